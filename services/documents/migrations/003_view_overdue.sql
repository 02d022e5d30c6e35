-- When the scheduler found a copy not opened by its viewing deadline (flagged once per version).
ALTER TABLE deliveries ADD COLUMN view_overdue_at timestamptz;
CREATE INDEX deliveries_to_flag ON deliveries (view_due_at) WHERE view_overdue_at IS NULL;
