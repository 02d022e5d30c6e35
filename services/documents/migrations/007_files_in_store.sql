-- The PDFs move to the file store (shared/files.py, namespace "documents"): a new file's row
-- keeps its size, type and owner, and no bytes. Rows stored before keep theirs and are read
-- from here.
ALTER TABLE files ALTER COLUMN content DROP NOT NULL;
