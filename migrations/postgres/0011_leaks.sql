-- Leak response (issue 23): a key reported leaked keeps when it was first
-- reported and where (`exposure`: JSON `{"source","location","at"}`, never
-- the key). The Attention order reads exposed keys first, longest exposed
-- first, from their own small index.
ALTER TABLE api_keys ADD COLUMN exposed_at BIGINT;
ALTER TABLE api_keys ADD COLUMN exposure TEXT;
CREATE INDEX api_keys_exposed ON api_keys (org_id, exposed_at, id) WHERE exposed_at IS NOT NULL;
