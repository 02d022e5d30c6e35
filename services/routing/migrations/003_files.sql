-- The dossier's files as routing knows them (from intake's events and its own results), so
-- that the agencies on the route can open them; the bytes are in the file store.
CREATE TABLE dossier_files (
    dossier_id  uuid        NOT NULL REFERENCES dossiers (dossier_id),
    sha256      text        NOT NULL,
    role        text        NOT NULL,   -- component, supplement, result
    component   text,
    name        text        NOT NULL,
    media_type  text        NOT NULL,
    size        bigint      NOT NULL,
    reused_from text,
    store       text        NOT NULL DEFAULT 'dossiers',
    bound_at    timestamptz NOT NULL,
    PRIMARY KEY (dossier_id, sha256, role)
);

-- Scans of paper results uploaded by an agency's officials: a result names only a file its
-- own agency uploaded.
CREATE TABLE uploads (
    sha256      text        NOT NULL,
    agency_code text        NOT NULL,
    size        bigint      NOT NULL,
    media_type  text        NOT NULL,
    uploaded_at timestamptz NOT NULL,
    PRIMARY KEY (sha256, agency_code)
);
