-- Official documents sent about a dossier (the documents service's events, read from the
-- document topic): a decision signed by the deciding agency is what an approval names.
ALTER TABLE dossiers ADD COLUMN result_kind text NOT NULL DEFAULT 'paper';  -- decision, paper

CREATE TABLE dossier_documents (
    document_id   uuid PRIMARY KEY,
    dossier_id    uuid        NOT NULL REFERENCES dossiers (dossier_id),
    sender_agency text        NOT NULL,
    number        text        NOT NULL,
    doc_type      text        NOT NULL,
    version       int         NOT NULL,
    sha256        text        NOT NULL,
    size          bigint      NOT NULL,
    state         text        NOT NULL,   -- checking, valid (signatures checked on arrival), refused, recalled
    reason        text,
    sent_at       timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX dossier_documents_by_dossier ON dossier_documents (dossier_id);
