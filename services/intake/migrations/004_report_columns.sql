-- What the managers' report needs: the legal due date (moved by supplement pauses, not by
-- apologies), when processing ended (NgayKetThucXuLy), and how many apologies were sent.
ALTER TABLE dossiers
    ADD COLUMN legal_due_at timestamptz,
    ADD COLUMN resolved_at  timestamptz,
    ADD COLUMN apologies    int NOT NULL DEFAULT 0;
UPDATE dossiers SET legal_due_at = due_at WHERE legal_due_at IS NULL;
