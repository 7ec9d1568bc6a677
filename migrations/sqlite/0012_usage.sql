-- Key checks counted by outcome (issue 22), written in batches by the
-- service (`src/service/usage.rs`) and pruned by it: per key per minute
-- (kept 48 h by default) and per key per hour (kept 90 days). `at` is the
-- bucket's start in Unix milliseconds. The row with key_id '' and org_id ''
-- counts well-formed keys that matched nothing (`unknown`), service-wide.
CREATE TABLE usage_minute (
    key_id              TEXT NOT NULL,
    org_id              TEXT NOT NULL,
    at                  INTEGER NOT NULL,
    valid               INTEGER NOT NULL DEFAULT 0,
    insufficient_scope  INTEGER NOT NULL DEFAULT 0,
    expired             INTEGER NOT NULL DEFAULT 0,
    revoked             INTEGER NOT NULL DEFAULT 0,
    rate_limited        INTEGER NOT NULL DEFAULT 0,
    unknown             INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, at)
);
CREATE INDEX usage_minute_by_org ON usage_minute (org_id, at);
CREATE INDEX usage_minute_by_at ON usage_minute (at);

CREATE TABLE usage_hour (
    key_id              TEXT NOT NULL,
    org_id              TEXT NOT NULL,
    at                  INTEGER NOT NULL,
    valid               INTEGER NOT NULL DEFAULT 0,
    insufficient_scope  INTEGER NOT NULL DEFAULT 0,
    expired             INTEGER NOT NULL DEFAULT 0,
    revoked             INTEGER NOT NULL DEFAULT 0,
    rate_limited        INTEGER NOT NULL DEFAULT 0,
    unknown             INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, at)
);
CREATE INDEX usage_hour_by_org ON usage_hour (org_id, at);
CREATE INDEX usage_hour_by_at ON usage_hour (at);

-- The last distinct client addresses of each key (10 kept), times in Unix ms.
CREATE TABLE usage_addresses (
    key_id      TEXT NOT NULL,
    addr        TEXT NOT NULL,
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    uses        INTEGER NOT NULL,
    PRIMARY KEY (key_id, addr)
);

-- The `api_key.new_address_used` audit entries' rate limit, per key.
CREATE TABLE usage_new_address (
    key_id        TEXT PRIMARY KEY,
    window_start  INTEGER NOT NULL,
    audits        INTEGER NOT NULL
);
