-- Secrets the service makes for itself and every replica shares: the first
-- replica to start inserts each one (`ON CONFLICT DO NOTHING`), then every
-- replica reads the one that was kept. Only the service reads them.
--
-- `sync_cursor`: 32 random bytes, the key of the permutation that makes the
-- `sync_cursor` of `GET /v1/api-keys` opaque (`service::store::sync_cursor`).
-- Replacing it makes every cursor clients hold open to an unrelated value:
-- their next refresh may list too much or, rarely, miss a change once.
CREATE TABLE server_secrets (
    name        TEXT PRIMARY KEY,
    secret      BYTEA NOT NULL,
    created_at  BIGINT NOT NULL
);
