-- The key check cache of PostgreSQL replicas (src/service/keycache/postgres.rs).
-- Every transaction that changes what a key check answers bumps the epoch and
-- notifies `keydeck_keycheck` (delivered at commit), whoever wrote it: the
-- service, `keydeck admin`, or an operator's SQL. Each replica with a cache
-- holds a lease and records the newest epoch it has cleared its cache for;
-- a writer waits, before it answers, until every live lease has caught up.

CREATE TABLE keycheck_epoch (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    epoch  BIGINT NOT NULL
);

INSERT INTO keycheck_epoch (id, epoch) VALUES (1, 0);

CREATE TABLE keycheck_replicas (
    id           TEXT PRIMARY KEY,
    lease_until  BIGINT NOT NULL,
    acked        BIGINT NOT NULL
);

CREATE FUNCTION keycheck_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bumped BIGINT;
BEGIN
    UPDATE keycheck_epoch SET epoch = epoch + 1 WHERE id = 1 RETURNING epoch INTO bumped;
    PERFORM pg_notify('keydeck_keycheck', bumped::TEXT);
    RETURN NULL;
END
$$;

CREATE TRIGGER api_keys_keycheck_update
    AFTER UPDATE OF digest, org_id, name, scopes, expires_at, revoked_at ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION keycheck_changed();

CREATE TRIGGER api_keys_keycheck_delete
    AFTER DELETE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION keycheck_changed();

CREATE TRIGGER organisations_keycheck_update
    AFTER UPDATE OF plan ON organisations
    FOR EACH STATEMENT EXECUTE FUNCTION keycheck_changed();

CREATE TRIGGER organisations_keycheck_delete
    AFTER DELETE ON organisations
    FOR EACH STATEMENT EXECUTE FUNCTION keycheck_changed();
