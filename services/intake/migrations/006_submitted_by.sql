-- The connected system (the OAuth2 client of the token) that submitted a dossier or asked for
-- its pickup: a portal reads only what it submitted (shared/access_policy.yaml, "submitter").
ALTER TABLE dossiers ADD COLUMN submitted_by text;
ALTER TABLE pickups  ADD COLUMN submitted_by text;
