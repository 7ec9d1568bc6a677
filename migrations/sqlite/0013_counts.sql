-- The counts per tab and the summary line (`GET /v1/api-keys/counts`,
-- `window::counts`) read every key of the organisation once. This index
-- holds every column their rules read, so they are read from it alone
-- (`SEARCH api_keys USING COVERING INDEX`), not from the table's rows with
-- their digests, names and scopes: at a million keys, 0.39 s of CPU instead
-- of 0.49 s, and a fifth of the pages (issue 19).
CREATE INDEX api_keys_counts ON api_keys
    (org_id, revoked_at, expires_at, created_at, last_used_at, replaced_by, description);
