-- An Idempotency-Key remembers which request it was used for (SHA-256 of the
-- normalised create request), so that reusing it for another one is refused.
ALTER TABLE idempotency_keys ADD COLUMN request_digest BYTEA;

-- Users can be removed and left without a token. A removed user's row stays
-- (removed_at set), so that audit entries and created_by still name them; an
-- email is unique among current users only. A user without a working token
-- has token_digest NULL.
ALTER TABLE users ADD COLUMN removed_at BIGINT;
ALTER TABLE users ALTER COLUMN token_digest DROP NOT NULL;
ALTER TABLE users DROP CONSTRAINT users_email_key;
CREATE UNIQUE INDEX users_current_email ON users (email) WHERE removed_at IS NULL;
