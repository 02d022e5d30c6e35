-- Online payment of a dossier's fees (services/intake/payments.py). An online dossier of a
-- procedure with a fee waits here ('awaiting_payment' on the dossier) until the payment
-- platform says it is paid; the DossierReceived held back is then published, once.
CREATE TABLE payments (
    dossier_id     uuid        PRIMARY KEY REFERENCES dossiers (id),
    amount_vnd     bigint      NOT NULL CHECK (amount_vnd > 0),
    status         text        NOT NULL CHECK (status IN ('creating', 'pending', 'paid', 'refund_requested', 'refunded')),
    order_id       text        UNIQUE,
    pay_url        text,
    receipt_no     text,                 -- biên lai điện tử, as the platform numbered it
    received_event jsonb       NOT NULL, -- the DossierReceived held back until the payment
    created_at     timestamptz NOT NULL,
    polled_at      timestamptz,
    paid_at        timestamptz,
    refunded_at    timestamptz
);
CREATE INDEX payments_open ON payments (status) WHERE status IN ('creating', 'pending', 'refund_requested');

ALTER TABLE dossiers ADD COLUMN paid_online_at timestamptz;
