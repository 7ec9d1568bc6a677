-- The key check cache's tables of PostgreSQL replicas (see
-- migrations/postgres/0006_keycheck.sql). A SQLite service is one process: it
-- clears its cache on its own writes and watches `PRAGMA data_version` for
-- other processes' writes, so it never uses these; they exist so that both
-- schemas keep the same versions and shape.

CREATE TABLE keycheck_epoch (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    epoch  INTEGER NOT NULL
);

INSERT INTO keycheck_epoch (id, epoch) VALUES (1, 0);

CREATE TABLE keycheck_replicas (
    id           TEXT PRIMARY KEY,
    lease_until  INTEGER NOT NULL,
    acked        INTEGER NOT NULL
);
