-- A dossier withdrawn while it awaits its payment (services/intake/payments.py): its order is
-- cancelled on the payment platform (cancel_requested until the platform answers), or refunded
-- when the citizen paid in the meantime.
ALTER TABLE payments DROP CONSTRAINT payments_status_check;
ALTER TABLE payments ADD CONSTRAINT payments_status_check CHECK (
    status IN ('creating', 'pending', 'paid', 'cancel_requested', 'cancelled', 'refund_requested', 'refunded')
);
ALTER TABLE payments ADD COLUMN cancelled_at timestamptz;
DROP INDEX payments_open;
CREATE INDEX payments_open ON payments (status) WHERE status IN ('creating', 'pending', 'cancel_requested', 'refund_requested');
