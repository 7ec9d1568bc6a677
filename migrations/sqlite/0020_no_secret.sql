-- The `no_secret` health badge: an active key whose secret was never issued
-- (the `rotate` leak policy's successor, `secret_pending`, 0015). The
-- Attention order reads these keys right after the exposed ones, longest
-- waiting first, from their own small index; the counts' covering index
-- (0019) again, with `secret_pending`, which the rules now read, so that the
-- counts stay read from the index alone.
CREATE INDEX api_keys_no_secret ON api_keys (org_id, created_at, id) WHERE secret_pending;
DROP INDEX IF EXISTS api_keys_counts;
CREATE INDEX api_keys_counts ON api_keys
    (org_id, revoked_at, expires_at, created_at, last_used_at, replaced_by, description,
     exposed_at, refused_since, secret_pending);
