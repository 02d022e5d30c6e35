-- The second factor a citizen needs to look their dossier up by its code (printed on the
-- slip as "Mã tra cứu"), sealed like other personal data: codes are sequential and guessable,
-- this key is not.
ALTER TABLE dossiers ADD COLUMN lookup_key text;
