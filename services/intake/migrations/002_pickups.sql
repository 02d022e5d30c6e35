-- Dossiers the post is asked to pick up at the citizen's home (BCCI). The pickup id becomes
-- the dossier id when the package reaches the counter and the dossier is received.
CREATE TABLE pickups (
    dossier_id      uuid PRIMARY KEY,
    command         jsonb       NOT NULL,    -- the submission, personal data included: never logged
    status          text        NOT NULL,    -- requested, received, refused
    requested_at    timestamptz NOT NULL,
    idempotency_key text UNIQUE
);
