-- Webhook retention: delivered (or given-up) events and their deliveries are
-- pruned after `serve --webhook-retention` (7 days by default).
--
-- A time-based event's row is also what makes it happen once (its `dedupe`
-- text), so it is kept until `keep_until`: until it could no longer be made
-- again (`api_key.expiring`: the key's expiry; `api_key.expired`: a day
-- after it; `digest.daily`: the end of its day). Events written before this
-- migration get a bound as safe: a digest or an expired event two days, an
-- expiring one the longest policy threshold (3650 days) and a day.
ALTER TABLE webhook_events ADD COLUMN keep_until INTEGER;
UPDATE webhook_events SET keep_until = created_at + CASE type
    WHEN 'api_key.expiring' THEN 3651 * 86400000
    ELSE 2 * 86400000 END
    WHERE dedupe IS NOT NULL;
-- Pruning reads the oldest events first.
CREATE INDEX webhook_events_by_age ON webhook_events (created_at);
