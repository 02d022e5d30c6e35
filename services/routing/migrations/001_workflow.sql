-- Each dossier's workflow across agencies and levels, its deadlines, and its timeline.
CREATE TABLE dossiers (
    dossier_id       uuid PRIMARY KEY,
    code             text        NOT NULL UNIQUE,
    procedure_code   text        NOT NULL,
    receiving_agency text        NOT NULL,
    status           text        NOT NULL,   -- processing, supplement_requested, resolved, returned, withdrawn, stopped
    outcome          text,                   -- approved / refused
    current_step     int         NOT NULL,
    received_at      timestamptz NOT NULL,
    due_at           timestamptz NOT NULL,
    paused_at        timestamptz,            -- the clock stops while a supplement is awaited
    at_risk_for      timestamptz,            -- the due date an at-risk warning was sent for
    overdue_for      timestamptz,            -- the due date an apology was sent for
    apologies        int         NOT NULL DEFAULT 0,
    resolved_at      timestamptz,
    finished_at      timestamptz,
    trace_id         text,
    traceparent      text,                   -- agencies' actions continue the dossier's trace
    updated_at       timestamptz NOT NULL
);
CREATE INDEX dossiers_open_by_due ON dossiers (due_at) WHERE status = 'processing';

CREATE TABLE steps (
    dossier_id      uuid        NOT NULL REFERENCES dossiers (dossier_id),
    idx             int         NOT NULL,
    name            text        NOT NULL,
    kind            text        NOT NULL,   -- handle, decide, return
    level           text        NOT NULL,
    agency_code     text        NOT NULL,
    days            numeric     NOT NULL,
    due_at          timestamptz NOT NULL,
    status          text        NOT NULL,   -- pending, assigned, in_progress, done, skipped
    assigned_at     timestamptz,
    accepted_at     timestamptz,
    finished_at     timestamptz,
    overdue_flagged boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (dossier_id, idx)
);
CREATE INDEX steps_open_by_due ON steps (due_at) WHERE status IN ('assigned', 'in_progress') AND NOT overdue_flagged;

-- The process-control timeline (Phiếu kiểm soát quá trình), append-only, built from the
-- events themselves: every hop of every service.
CREATE TABLE timeline (
    seq          bigserial,              -- order of recording: breaks ties between equal times
    event_id     text PRIMARY KEY,
    dossier_id   uuid        NOT NULL,
    dossier_code text        NOT NULL,
    event_type   text        NOT NULL,
    at           timestamptz NOT NULL,
    source       text        NOT NULL,
    agency_code  text,
    step_index   int,
    step_due_at  timestamptz,
    late         boolean,
    trace_id     text,
    summary      text        NOT NULL
);
CREATE INDEX timeline_by_code ON timeline (dossier_code, at);
