-- Whose storage a file counts against: the agency of the official who first uploaded it
-- (files stored before this migration count against nobody's quota).
ALTER TABLE files ADD COLUMN IF NOT EXISTS agency text;
CREATE INDEX IF NOT EXISTS files_by_agency ON files (agency);
