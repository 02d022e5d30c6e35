-- The dossier's files (shared/files.py keeps the bytes; these rows say whose they are).

-- Who uploaded which file: a submission may bind only files its own system uploaded, so
-- that knowing a hash (it travels in events) never lets anyone claim someone else's file.
CREATE TABLE uploads (
    sha256      text        NOT NULL,
    uploaded_by text        NOT NULL,   -- the OAuth2 client (a portal, a counter's software)
    size        bigint      NOT NULL,
    media_type  text        NOT NULL,
    uploaded_at timestamptz NOT NULL,
    PRIMARY KEY (sha256, uploaded_by)
);

-- Every file bound to a dossier: its components at receipt and supplement, its result.
CREATE TABLE dossier_files (
    dossier_id  uuid        NOT NULL REFERENCES dossiers (id),
    sha256      text        NOT NULL,
    role        text        NOT NULL,   -- component, supplement, result
    component   text,
    name        text        NOT NULL,
    media_type  text        NOT NULL,
    size        bigint      NOT NULL,
    reused_from text,                   -- the earlier dossier whose digitised result this reuses
    store       text        NOT NULL DEFAULT 'dossiers',  -- the file store's namespace: dossiers, documents (decisions)
    bound_at    timestamptz NOT NULL,
    PRIMARY KEY (dossier_id, sha256, role)
);
CREATE INDEX dossier_files_by_sha ON dossier_files (sha256);

-- The applicant's digitised results (Decree 45/2020's store of digitised papers), keyed by
-- the keyed hash of their ID number: reusable in a later dossier of the same person.
ALTER TABLE dossiers ADD COLUMN applicant_key text;
CREATE INDEX dossiers_by_applicant ON dossiers (applicant_key) WHERE applicant_key IS NOT NULL;
-- When the files of a finished dossier stop being kept (its retention), set when it finishes.
ALTER TABLE dossiers ADD COLUMN files_kept_until timestamptz;
