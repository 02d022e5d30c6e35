-- The audit log of a service (shared/audit.py): every state-changing request and every
-- refused one. Append-only: the trigger below refuses to change or remove a row.
CREATE TABLE IF NOT EXISTS audit_log (
    seq          bigserial   PRIMARY KEY,
    at           timestamptz NOT NULL,     -- the platform clock
    service      text        NOT NULL,
    method       text        NOT NULL,
    route        text        NOT NULL,     -- the route's template, e.g. /v1/dossiers/{code}/accept
    dossier_code text,                     -- when the route names a dossier
    status       integer     NOT NULL,
    outcome      text        NOT NULL,     -- done | denied | throttled | refused | failed
    reason       text,                     -- why it was denied (never a body, never personal data)
    client_id    text,                     -- the connected system (the token's client)
    username     text,                     -- the person, when one signed in
    agency       text,                     -- the agency the token says the caller acts for
    request_id   text        NOT NULL,
    trace_id     text
);
CREATE INDEX IF NOT EXISTS audit_log_by_dossier ON audit_log (dossier_code, at) WHERE dossier_code IS NOT NULL;
CREATE INDEX IF NOT EXISTS audit_log_by_client ON audit_log (client_id, at);

CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP;
END $$;
DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
