-- Citizens' ratings of how their dossier was handled (Decision 766, group 5): one per dossier,
-- after its result, given with the slip's lookup key or on the counter's device. The comment is
-- kept with numbers and e-mail addresses masked; the report shows counts, never the applicant.
CREATE TABLE ratings (
    dossier_id  uuid        PRIMARY KEY REFERENCES dossiers (id),
    rating      text        NOT NULL CHECK (rating IN ('very_satisfied', 'satisfied', 'dissatisfied')),
    comment     text        CHECK (length(comment) <= 500),
    source      text        NOT NULL CHECK (source IN ('lookup', 'counter')),
    rated_by    text        NOT NULL,   -- 'citizen' or the counter device's client
    at          timestamptz NOT NULL
);

-- Who decided (the official named on the resolution event): ratings per official.
ALTER TABLE dossiers ADD COLUMN decided_by text;
