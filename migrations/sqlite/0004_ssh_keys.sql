-- SSH public keys: a user's identity on `keydeck serve --ssh-listen`. A key
-- belongs to one user: its SHA-256 fingerprint (`SHA256:…`, as `ssh-keygen -l`
-- prints it) is the primary key. `public_key` is the OpenSSH line without
-- its comment; the comment is kept apart, for people.
CREATE TABLE ssh_keys (
    fingerprint   TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id),
    algorithm     TEXT NOT NULL,
    public_key    TEXT NOT NULL,
    comment       TEXT NOT NULL,
    added_at      INTEGER NOT NULL,
    last_used_at  INTEGER
);
CREATE INDEX ssh_keys_user ON ssh_keys (user_id);
