-- Who to tell about a dossier (personal data: used to send, never logged).
CREATE TABLE recipients (
    dossier_id   uuid PRIMARY KEY,
    dossier_code text,
    full_name    text NOT NULL,
    phone        text NOT NULL,
    email        text,
    channels     text[] NOT NULL             -- in order of preference; later ones are fallbacks
);

-- One row per (event, channel): the unique key is what makes a message go out once.
CREATE TABLE notifications (
    id           uuid PRIMARY KEY,           -- also the providers' idempotency key
    event_id     text        NOT NULL,
    dossier_id   uuid        NOT NULL,
    dossier_code text,
    event_type   text        NOT NULL,
    channel      text        NOT NULL,       -- sms, zalo, email
    position     int         NOT NULL,       -- 0 = first choice
    address      text        NOT NULL,       -- phone or e-mail
    subject      text        NOT NULL,
    body         text        NOT NULL,
    status       text        NOT NULL,       -- pending, standby, sent, failed, skipped
    urgent       boolean     NOT NULL DEFAULT false,
    attempts     int         NOT NULL DEFAULT 0,
    not_before   timestamptz NOT NULL,
    provider_id  text,
    last_error   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    sent_at      timestamptz,
    UNIQUE (event_id, channel)
);
CREATE INDEX notifications_due ON notifications (not_before) WHERE status = 'pending';
CREATE INDEX notifications_sent_to ON notifications (address, sent_at) WHERE status = 'sent';
