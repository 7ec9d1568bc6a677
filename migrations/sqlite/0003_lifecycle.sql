-- An Idempotency-Key remembers which request it was used for (SHA-256 of the
-- normalised create request), so that reusing it for another one is refused.
ALTER TABLE idempotency_keys ADD COLUMN request_digest BLOB;

-- Users can be removed and left without a token. A removed user's row stays
-- (removed_at set), so that audit entries and created_by still name them; an
-- email is unique among current users only. A user without a working token
-- has token_digest NULL. SQLite cannot drop NOT NULL or a column's UNIQUE, so
-- the table is rebuilt (no other table refers to it).
CREATE TABLE users_new (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES organisations (id),
    email         TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    token_digest  BLOB UNIQUE,
    created_at    INTEGER NOT NULL,
    removed_at    INTEGER
);
INSERT INTO users_new (id, org_id, email, role, token_digest, created_at)
    SELECT id, org_id, email, role, token_digest, created_at FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
CREATE UNIQUE INDEX users_current_email ON users (email) WHERE removed_at IS NULL;
