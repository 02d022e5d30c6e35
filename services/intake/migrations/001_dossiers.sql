-- Dossiers as received at the one-stop counter or through a portal, with the status view
-- intake keeps from routing's events (for queries and the portal status sync).
CREATE TABLE dossiers (
    id              uuid PRIMARY KEY,
    code            text        NOT NULL UNIQUE,        -- mã hồ sơ
    procedure_code  text        NOT NULL,
    procedure_name  text        NOT NULL,
    agency_code     text        NOT NULL,               -- the receiving agency
    channel         text        NOT NULL,
    applicant       jsonb       NOT NULL,               -- personal data: never logged
    documents       jsonb       NOT NULL,
    result_delivery text        NOT NULL,
    status          text        NOT NULL,
    outcome         text,                               -- approved / refused once resolved
    current_step    text,
    current_agency  text,
    received_at     timestamptz NOT NULL,
    due_at          timestamptz NOT NULL,               -- ngày hẹn trả, moved by pauses and apologies
    overdue         boolean     NOT NULL DEFAULT false,
    idempotency_key text UNIQUE,                        -- the caller's, for safe retries
    trace_id        text,
    updated_at      timestamptz NOT NULL
);

-- The daily sequence in dossier codes, per receiving agency.
CREATE TABLE daily_sequences (
    agency_code text NOT NULL,
    day         date NOT NULL,
    last_value  int  NOT NULL,
    PRIMARY KEY (agency_code, day)
);

-- Submissions refused at receipt (Phiếu từ chối tiếp nhận), with every reason.
CREATE TABLE refusals (
    id              uuid PRIMARY KEY,
    procedure_code  text        NOT NULL,
    agency_code     text        NOT NULL,
    channel         text        NOT NULL,
    contact         jsonb       NOT NULL,
    reasons         jsonb       NOT NULL,
    refused_at      timestamptz NOT NULL,
    idempotency_key text UNIQUE
);

-- Everything that happened to a dossier, as intake heard it.
CREATE TABLE dossier_history (
    seq         bigserial,             -- order of recording: breaks ties between equal times
    event_id    text PRIMARY KEY,
    dossier_id  uuid        NOT NULL REFERENCES dossiers (id),
    event_type  text        NOT NULL,
    at          timestamptz NOT NULL,
    agency_code text,
    summary     text        NOT NULL
);
CREATE INDEX dossier_history_by_dossier ON dossier_history (dossier_id, at);
