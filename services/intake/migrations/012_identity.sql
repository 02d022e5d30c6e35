-- The applicant's identity against the national population database (services/intake/population.py):
-- not_checked (the procedure is not connected, or no database is configured), confirmed,
-- to_confirm (the database did not answer at receipt: checked again in the background), failed.
ALTER TABLE dossiers ADD COLUMN identity_status text NOT NULL DEFAULT 'not_checked'
    CHECK (identity_status IN ('not_checked', 'confirmed', 'to_confirm', 'failed'));
ALTER TABLE dossiers ADD COLUMN identity_checked_at timestamptz;
ALTER TABLE dossiers ADD COLUMN identity_attempts int NOT NULL DEFAULT 0;
ALTER TABLE dossiers ADD COLUMN identity_birth_date text;        -- as the applicant gave it, sealed
ALTER TABLE dossiers ADD COLUMN identity_from_db text;           -- the database's fields, sealed; dropped when finished
ALTER TABLE dossiers ADD COLUMN identity_prefilled text[] NOT NULL DEFAULT '{}';  -- which fields came from it
CREATE INDEX dossiers_identity_to_confirm ON dossiers (received_at) WHERE identity_status = 'to_confirm';
CREATE INDEX dossiers_identity_kept ON dossiers (status) WHERE identity_from_db IS NOT NULL;
