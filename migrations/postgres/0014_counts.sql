-- The counts per tab and the summary line (`GET /v1/api-keys/counts`,
-- `window::counts`) read every key of the organisation once. This index
-- holds every column their rules read, so they can be read from it alone
-- (an index-only scan, once VACUUM has marked the pages all-visible), not
-- from the table's rows with their digests, names and scopes (issue 19).
CREATE INDEX api_keys_counts ON api_keys (org_id)
    INCLUDE (revoked_at, expires_at, created_at, last_used_at, replaced_by, description);
