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

-- The filter (`q`): a substring of the name, prefix, description or scopes,
-- found through trigrams (3 characters or more; shorter texts are matched
-- by LIKE while the sort's index is read). Its own copy of the text, by key
-- id (not by rowid, which VACUUM may renumber), kept in step by triggers.
CREATE VIRTUAL TABLE api_keys_fts USING fts5(
    key_id UNINDEXED, name, prefix, description, scopes, tokenize = 'trigram'
);
INSERT INTO api_keys_fts (key_id, name, prefix, description, scopes)
    SELECT id, name, prefix, description, scopes FROM api_keys;

CREATE TRIGGER api_keys_fts_on_insert AFTER INSERT ON api_keys
BEGIN
    INSERT INTO api_keys_fts (key_id, name, prefix, description, scopes)
        VALUES (NEW.id, NEW.name, NEW.prefix, NEW.description, NEW.scopes);
END;

-- Keys' texts never change today; should they, the copy follows.
CREATE TRIGGER api_keys_fts_on_update AFTER UPDATE OF name, prefix, description, scopes ON api_keys
BEGIN
    DELETE FROM api_keys_fts WHERE key_id = OLD.id;
    INSERT INTO api_keys_fts (key_id, name, prefix, description, scopes)
        VALUES (NEW.id, NEW.name, NEW.prefix, NEW.description, NEW.scopes);
END;

CREATE TRIGGER api_keys_fts_on_delete AFTER DELETE ON api_keys
BEGIN
    DELETE FROM api_keys_fts WHERE key_id = OLD.id;
END;
