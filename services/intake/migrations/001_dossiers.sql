-- Dossiers as received at the one-stop counter or through a portal.
CREATE TABLE dossiers (
    id              uuid PRIMARY KEY,
    code            text        NOT NULL UNIQUE,        -- mã hồ sơ
    procedure_code  text        NOT NULL,
    agency_code     text        NOT NULL,
    channel         text        NOT NULL,
    applicant       jsonb       NOT NULL,               -- personal data: never logged
    status          text        NOT NULL,
    received_at     timestamptz NOT NULL,
    idempotency_key text UNIQUE,                        -- the caller's, for safe retries
    trace_id        text
);

-- The daily sequence in dossier codes, per receiving agency.
CREATE TABLE daily_sequences (
    agency_code text NOT NULL,
    day         date NOT NULL,
    last_value  int  NOT NULL,
    PRIMARY KEY (agency_code, day)
);
