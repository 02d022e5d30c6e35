-- Status updates owed to the national portal for dossiers submitted through it, in order.
CREATE TABLE portal_updates (
    dossier_id      uuid        NOT NULL REFERENCES dossiers (id),
    seq             int         NOT NULL,          -- SoThuTu: the portal takes them in this order only
    status_code     int         NOT NULL,          -- TrangThaiHoSo
    payload         jsonb       NOT NULL,          -- in the portal's vocabulary
    status          text        NOT NULL,          -- pending, sent, rejected
    attempts        int         NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    PRIMARY KEY (dossier_id, seq)
);
CREATE INDEX portal_updates_pending ON portal_updates (next_attempt_at) WHERE status = 'pending';
