-- Dossiers routing has taken into its workflow.
CREATE TABLE dossiers (
    dossier_id     uuid PRIMARY KEY,
    code           text        NOT NULL,
    procedure_code text        NOT NULL,
    agency_code    text        NOT NULL,              -- the agency holding it now
    status         text        NOT NULL,
    received_at    timestamptz NOT NULL,
    recorded_at    timestamptz NOT NULL,
    trace_id       text                               -- the journey's trace, for operators
);
