-- A copy the axis took is taken back there when the sender recalls the document or replaces it
-- with a new version: state recalling (told to the axis until it confirms), then recalled; a
-- copy not pushed yet is withdrawn and never goes.
ALTER TABLE axis_deliveries ADD COLUMN recall_reason text;
CREATE INDEX axis_to_recall ON axis_deliveries (next_attempt_at) WHERE state = 'recalling';
