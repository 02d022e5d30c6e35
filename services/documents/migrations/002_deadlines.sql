-- When each copy arrived and by when it must be opened and finished (set by urgency).
ALTER TABLE deliveries ADD COLUMN arrived_at timestamptz;
ALTER TABLE deliveries ADD COLUMN view_due_at timestamptz;
ALTER TABLE deliveries ADD COLUMN process_due_at timestamptz;
ALTER TABLE deliveries ADD COLUMN done_at timestamptz;
CREATE INDEX deliveries_arrived ON deliveries (arrived_at);
CREATE INDEX documents_created ON documents (created_at);
