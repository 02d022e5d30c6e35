-- The fingerprint (SHA-256 of the command as parsed) of the request an Idempotency-Key was
-- first used for: a retry must carry the same request, another request under the same key is
-- refused. Rows from before this column have none and are not compared.
ALTER TABLE dossiers ADD COLUMN request_hash text;
ALTER TABLE refusals ADD COLUMN request_hash text;
ALTER TABLE pickups  ADD COLUMN request_hash text;
