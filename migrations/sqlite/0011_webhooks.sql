-- Notifications (issue 24): signed webhooks from a transactional outbox.
--
-- `webhook_endpoints.secret` (and `previous_secret` during a rotation's
-- overlap) is the endpoint's signing secret in the clear (`whsec_…`): unlike
-- API keys and tokens, which are only checked and so stored as digests, it
-- is the HMAC-SHA256 key every delivery is signed with, so the service must
-- read it back. It is never logged, never in a Debug output, never in an
-- API answer but the one that creates (or rotates) it.
CREATE TABLE webhook_endpoints (
    id                    TEXT PRIMARY KEY,
    org_id                TEXT NOT NULL REFERENCES organisations (id),
    url                   TEXT NOT NULL,
    -- The event types it is sent, space-separated.
    events                TEXT NOT NULL,
    secret                TEXT NOT NULL,
    previous_secret       TEXT,
    previous_until        INTEGER,
    created_at            INTEGER NOT NULL,
    created_by            TEXT NOT NULL,
    -- Failed attempts in a row, and when that run of failures began.
    consecutive_failures  INTEGER NOT NULL DEFAULT 0,
    failing_since         INTEGER,
    disabled_at           INTEGER
);
CREATE INDEX webhook_endpoints_by_org ON webhook_endpoints (org_id, created_at);

-- The outbox: one row per event, written in the transaction of the change
-- it reports. `id` is the `webhook-id` receivers deduplicate by. `dedupe`
-- makes a time-based event (expiring, expired, digest) happen once however
-- many replicas notice it.
CREATE TABLE webhook_events (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL,
    type        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    payload     TEXT NOT NULL,
    dedupe      TEXT UNIQUE
);

-- One row per (event, subscribed endpoint), made with the event.
CREATE TABLE webhook_deliveries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id         TEXT NOT NULL,
    endpoint_id      TEXT NOT NULL,
    -- pending, delivered, failed (gave up)
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER,
    -- A replica sending it holds it until then (a crashed one lets go by itself).
    lease_until      INTEGER,
    last_attempt_at  INTEGER,
    last_status      INTEGER,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    UNIQUE (event_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id, id);
