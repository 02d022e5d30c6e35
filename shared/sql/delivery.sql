-- Delivery plumbing every service's schema has: the outbox, its relay's state, the inbox.

-- Events written in the same transaction as the state change that caused them.
CREATE TABLE IF NOT EXISTS outbox (
    seq          bigserial PRIMARY KEY,          -- publish order
    event_id     uuid        NOT NULL UNIQUE,    -- ce_id
    topic        text        NOT NULL,
    key          bytea,
    headers      jsonb       NOT NULL,           -- [[name, value], ...], UTF-8 values
    payload      bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX IF NOT EXISTS outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;

-- One row: a batch the relay began to publish but has not marked. After a crash, the relay
-- reads the topic from these offsets to learn which of the batch's events already landed.
CREATE TABLE IF NOT EXISTS outbox_relay_attempt (
    singleton    boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    max_seq      bigint      NOT NULL,
    offsets      jsonb       NOT NULL,           -- {"topic:partition": end offset before send}
    started_at   timestamptz NOT NULL DEFAULT now()
);

-- Events already handled, recorded in the handler's own transaction.
CREATE TABLE IF NOT EXISTS inbox (
    handler      text        NOT NULL,           -- the consuming service
    event_id     text        NOT NULL,
    event_type   text        NOT NULL,
    topic        text        NOT NULL,
    partition    int         NOT NULL,
    "offset"     bigint      NOT NULL,
    handled_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (handler, event_id)
);
