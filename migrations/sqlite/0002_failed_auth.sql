-- The shared failed-check counter of PostgreSQL replicas (see
-- migrations/postgres/0002_failed_auth.sql). A SQLite service is one process
-- and limits failed checks in memory, so it never writes this table; it
-- exists so that both schemas keep the same versions and shape.

CREATE TABLE failed_auth (
    addr          TEXT PRIMARY KEY,
    window_start  INTEGER NOT NULL,
    failures      INTEGER NOT NULL
);
