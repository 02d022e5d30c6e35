-- The receipt's trace context, kept with a dossier waiting for its fee: the DossierReceived held
-- back is published in that trace once paid, so the dossier's journey stays one trace whether
-- a callback or a poll settles it (services/intake/payments.py settle).
ALTER TABLE payments ADD COLUMN traceparent text;
