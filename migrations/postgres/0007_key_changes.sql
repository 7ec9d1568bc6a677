-- Every write to a key moves it past the refresh cursor of `GET
-- /v1/api-keys?changed_since=`: `change_seq` is the id of the transaction
-- that last wrote the row, set by a trigger on every insert and update
-- (whoever writes: any replica, `keydeck admin`, a future statement). A
-- cursor is the oldest transaction of this database still running when a
-- list was read (else the next id), so a write that was not yet visible to
-- that list is always at or past it, whatever the replicas' clocks say; a
-- few rows written just before may come again (an overlap, harmless).
ALTER TABLE api_keys ADD COLUMN change_seq BIGINT NOT NULL DEFAULT 0;
CREATE INDEX api_keys_by_change ON api_keys (org_id, change_seq);

CREATE FUNCTION api_keys_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.change_seq := pg_current_xact_id()::text::bigint;
    RETURN NEW;
END
$$;

CREATE TRIGGER api_keys_changed BEFORE INSERT OR UPDATE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION api_keys_touch();
