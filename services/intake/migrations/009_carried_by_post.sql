-- When the post delivered the dossier's result to the citizen: the BCCI share counts what the
-- post carried, not what was asked of it (a failed delivery is not a carried one).
ALTER TABLE dossiers ADD COLUMN result_delivered_by_post_at timestamptz;
