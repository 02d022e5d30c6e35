-- Files stored once, by their SHA-256 (the claim check events carry).
CREATE TABLE files (
    sha256     text PRIMARY KEY,
    size       int         NOT NULL,
    media_type text        NOT NULL,
    content    bytea       NOT NULL,
    stored_at  timestamptz NOT NULL,
    stored_by  text
);

-- Official documents an agency sent (văn bản đi), as the sender registered them.
CREATE TABLE documents (
    id            uuid PRIMARY KEY,
    sender_agency text        NOT NULL,
    number        text        NOT NULL,        -- số, ký hiệu: 123/UBND-VP
    issued_on     date        NOT NULL,
    summary       text        NOT NULL,        -- trích yếu
    doc_type      text        NOT NULL,
    urgency       text        NOT NULL,        -- normal, urgent, very_urgent, express
    file_sha256   text        NOT NULL REFERENCES files (sha256),
    version       int         NOT NULL DEFAULT 1,
    status        text        NOT NULL DEFAULT 'sent',   -- sent, recalled
    dossier_code  text,
    sent_by       text,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    UNIQUE (sender_agency, number, issued_on)
);

-- One per recipient agency: where its copy stands (văn bản đến, seen from the receiver).
CREATE TABLE deliveries (
    document_id      uuid        NOT NULL REFERENCES documents (id),
    recipient_agency text        NOT NULL,
    version          int         NOT NULL,
    status           text        NOT NULL,     -- sending, arrived, refused, accepted, assigned, in_processing, done, recalled
    reason           text,
    updated_at       timestamptz NOT NULL,
    PRIMARY KEY (document_id, recipient_agency)
);
CREATE INDEX deliveries_by_recipient ON deliveries (recipient_agency, updated_at);

-- Every status a delivery went through, once per version: what the sender sees, in order.
CREATE TABLE delivery_statuses (
    seq              bigserial PRIMARY KEY,
    document_id      uuid        NOT NULL,
    recipient_agency text        NOT NULL,
    version          int         NOT NULL,
    status           text        NOT NULL,
    code             text        NOT NULL,
    reason           text,
    by_user          text,
    at               timestamptz NOT NULL,
    UNIQUE (document_id, recipient_agency, version, status)
);

-- Who of the receiving agency opened the document, and when first.
CREATE TABLE views (
    document_id      uuid        NOT NULL,
    recipient_agency text        NOT NULL,
    username         text        NOT NULL,
    viewed_at        timestamptz NOT NULL,
    PRIMARY KEY (document_id, recipient_agency, username)
);
