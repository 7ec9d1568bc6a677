-- Leak response (issue 23): the successor the `rotate` leak policy makes has
-- no secret until an admin issues one (POST /v1/api-keys/{id}/secret); until
-- then no token authenticates as it.
ALTER TABLE api_keys ADD COLUMN secret_pending BOOLEAN NOT NULL DEFAULT FALSE;
