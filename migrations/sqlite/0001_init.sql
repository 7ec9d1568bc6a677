-- keydeck schema for SQLite. Times are Unix milliseconds; secrets are stored
-- only as SHA-256 digests.

CREATE TABLE organisations (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    plan        TEXT NOT NULL CHECK (plan IN ('free', 'paid')),
    created_at  INTEGER NOT NULL
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES organisations (id),
    email         TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    token_digest  BLOB NOT NULL UNIQUE,
    created_at    INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES organisations (id),
    name          TEXT NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    prefix        TEXT NOT NULL,
    digest        BLOB NOT NULL UNIQUE,
    scopes        TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    created_by    TEXT NOT NULL,
    expires_at    INTEGER,
    last_used_at  INTEGER,
    revoked_at    INTEGER,
    revoked_by    TEXT
);

CREATE INDEX api_keys_by_org ON api_keys (org_id, created_at DESC, id DESC);

CREATE TABLE idempotency_keys (
    org_id           TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL,
    api_key_id       TEXT NOT NULL REFERENCES api_keys (id) DEFERRABLE INITIALLY DEFERRED,
    created_at       INTEGER NOT NULL,
    PRIMARY KEY (org_id, idempotency_key)
);

CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id       TEXT NOT NULL,
    at           INTEGER NOT NULL,
    actor_kind   TEXT NOT NULL,
    actor_id     TEXT NOT NULL,
    actor_name   TEXT NOT NULL,
    action       TEXT NOT NULL,
    api_key_id   TEXT NOT NULL,
    remote_addr  TEXT,
    details      TEXT NOT NULL
);

CREATE INDEX audit_log_by_org ON audit_log (org_id, id DESC);
