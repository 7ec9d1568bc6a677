-- Every write to a key moves it past the refresh cursor of `GET
-- /v1/api-keys?changed_since=`: `change_seq` is the organisation's highest
-- plus one, set by triggers on every insert and update (whoever writes:
-- the service, `keydeck admin`, a future statement), so a client that
-- already has the list fetches only the keys changed since. SQLite runs one
-- writer at a time, so the numbers are given in commit order.
ALTER TABLE api_keys ADD COLUMN change_seq INTEGER NOT NULL DEFAULT 0;
CREATE INDEX api_keys_by_change ON api_keys (org_id, change_seq);

-- A bulk insert (`admin seed`) numbers its rows itself, past every
-- organisation's highest, and skips the per-row update.
CREATE TRIGGER api_keys_changed_on_insert AFTER INSERT ON api_keys
WHEN NEW.change_seq = 0
BEGIN
    UPDATE api_keys SET change_seq =
        (SELECT COALESCE(MAX(change_seq), 0) + 1 FROM api_keys WHERE org_id = NEW.org_id)
    WHERE id = NEW.id;
END;

-- The trigger's own update changes change_seq, so it does not fire again.
CREATE TRIGGER api_keys_changed_on_update AFTER UPDATE ON api_keys
WHEN NEW.change_seq IS OLD.change_seq
BEGIN
    UPDATE api_keys SET change_seq =
        (SELECT COALESCE(MAX(change_seq), 0) + 1 FROM api_keys WHERE org_id = NEW.org_id)
    WHERE id = NEW.id;
END;
