-- Phone numbers arrive sealed (shared/personal_data.py) and stay sealed here: recipients.phone
-- and notifications.address hold the sealed value, opened only to send. The per-recipient
-- rate limit looks recipients up by a keyed hash instead.
ALTER TABLE notifications ADD COLUMN address_hash text;
CREATE INDEX notifications_sent_to_hash ON notifications (address_hash, sent_at) WHERE status = 'sent';
