-- Shipments booked with the public postal carrier.
CREATE TABLE shipments (
    id              uuid PRIMARY KEY,          -- also the booking's idempotency key and the carrier's reference
    dossier_id      uuid        NOT NULL,
    dossier_code    text,
    kind            text        NOT NULL,      -- pickup (home -> counter) or delivery (counter -> home)
    address         text        NOT NULL,      -- personal data: sent to the carrier, never logged
    status          text        NOT NULL,      -- booking, accepted, picked_up, in_transit, delivered, failed, returned_to_sender
    carrier_ref     text,
    attempts        int         NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    last_error      text,
    traceparent     text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (dossier_id, kind)
);
CREATE INDEX shipments_to_book ON shipments (next_attempt_at) WHERE status = 'booking';

-- Results to send by post: where, taken from the dossier when it was received.
CREATE TABLE delivery_addresses (
    dossier_id   uuid PRIMARY KEY,
    dossier_code text NOT NULL,
    address      text NOT NULL
);

-- Every webhook the carrier sent, once: duplicates are recognised by the carrier's event id.
CREATE TABLE carrier_webhooks (
    event_id    text PRIMARY KEY,
    shipment_id uuid        NOT NULL,
    status      text        NOT NULL,
    applied     boolean     NOT NULL,        -- false: stale or out of order, kept for the record
    received_at timestamptz NOT NULL DEFAULT now()
);
