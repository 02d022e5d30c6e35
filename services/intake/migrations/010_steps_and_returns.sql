-- Each dossier's workflow steps as intake follows them from routing's events, so that the
-- report charges lateness to the agency whose own step overran; and when the result reached
-- the citizen (returned on time is shown beside on time at the decision).
CREATE TABLE dossier_steps (
    dossier_id  uuid        NOT NULL REFERENCES dossiers (id),
    idx         int         NOT NULL,
    name        text        NOT NULL,
    kind        text        NOT NULL,   -- handle, decide, return
    level       text        NOT NULL,
    agency_code text        NOT NULL,
    due_at      timestamptz NOT NULL,   -- the step's own deadline, moved when a supplement pause ends
    assigned_at timestamptz NOT NULL,
    finished_at timestamptz,
    PRIMARY KEY (dossier_id, idx)
);
CREATE INDEX dossier_steps_by_agency ON dossier_steps (agency_code);

ALTER TABLE dossiers ADD COLUMN returned_at timestamptz;
