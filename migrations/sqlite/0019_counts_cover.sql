-- The counts' covering index (0013) again, with the columns the rules came
-- to read since: `exposed_at` (the `exposed` badge, issue 23) and
-- `refused_since` (the `refused` badge, issue 22). Without them every count
-- read each key's row from the table as well as the index, as before 0013.
DROP INDEX IF EXISTS api_keys_counts;
CREATE INDEX api_keys_counts ON api_keys
    (org_id, revoked_at, expires_at, created_at, last_used_at, replaced_by, description,
     exposed_at, refused_since);
