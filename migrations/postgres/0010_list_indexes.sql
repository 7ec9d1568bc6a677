-- The key list is a window the service reads from an index, whatever the
-- number of keys (`src/store/window.rs`): one index per sort, in the sort's
-- own expression (a query must write it the same way to use it), with the
-- id as the tie-breaker, so keyset pages run both ways from a position.
-- The created order has `api_keys_by_org` (0001).
CREATE INDEX api_keys_by_name ON api_keys (org_id, LOWER(name), id);
CREATE INDEX api_keys_by_last_used ON api_keys (org_id, COALESCE(last_used_at, -1), id);
-- "No expiry" sorts last; the expired and expiring keys are a range of it.
CREATE INDEX api_keys_by_expiry
    ON api_keys (org_id, COALESCE(expires_at, 9223372036854775807), id);
-- The Attention order's "unused" part: the last use, or the creation if never used.
CREATE INDEX api_keys_by_unused_since
    ON api_keys (org_id, COALESCE(last_used_at, created_at), id);
-- The Attention order's "rotating" part: old halves of rotations, ending soonest first.
CREATE INDEX api_keys_winding_down
    ON api_keys (org_id, COALESCE(expires_at, created_at), id) WHERE replaced_by IS NOT NULL;
-- The Revoked tab: few keys among many, found without reading the others.
CREATE INDEX api_keys_revoked ON api_keys (org_id, created_at, id) WHERE revoked_at IS NOT NULL;

-- The filter (`q`): a substring of the name, prefix, description or scopes
-- (`LIKE '%text%'`), found through trigram GIN indexes (pg_trgm, shipped
-- with PostgreSQL's contrib modules and trusted: no superuser needed). Texts
-- under 3 characters have no trigram: the planner reads the sort's index.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX api_keys_name_trgm ON api_keys USING gin (LOWER(name) gin_trgm_ops);
CREATE INDEX api_keys_prefix_trgm ON api_keys USING gin (LOWER(prefix) gin_trgm_ops);
CREATE INDEX api_keys_description_trgm ON api_keys USING gin (LOWER(description) gin_trgm_ops);
CREATE INDEX api_keys_scopes_trgm ON api_keys USING gin (scopes gin_trgm_ops);
