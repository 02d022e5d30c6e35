-- Copies for agencies of other provinces, carried by the national document-exchange axis:
-- pushed until the axis takes them (once per version), then polled for the statuses it reports.
CREATE TABLE axis_deliveries (
    document_id      uuid        NOT NULL,
    recipient_agency text        NOT NULL,
    version          int         NOT NULL,
    state            text        NOT NULL DEFAULT 'pending',   -- pending, pushed
    attempts         int         NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,
    last_error       text,
    pushed_at        timestamptz,
    seen_seq         int         NOT NULL DEFAULT 0,           -- the axis' last status applied
    next_poll_at     timestamptz,                              -- asked again sooner while statuses come in
    poll_every_s     int         NOT NULL DEFAULT 1,
    PRIMARY KEY (document_id, recipient_agency, version)
);
CREATE INDEX axis_to_poll ON axis_deliveries (next_poll_at) WHERE state = 'pushed';
CREATE INDEX axis_to_push ON axis_deliveries (next_attempt_at) WHERE state = 'pending';
