-- The `refused` health badge (issue 22): a key most of whose checks of the
-- last 24 h were refused (insufficient scope, rate limited…), at least 10 of
-- them. The usage flusher marks it (`refused_since`: when it became so;
-- `refusals`: JSON `{"checks","refused","most"}` of the last 24 h) and the
-- service's sweep takes the mark off once the refusals age out, so the list,
-- the Attention order and the counts read a column, never the usage rows.
-- Both indexes hold only the marked keys: the Attention order's segment
-- (longest refused first) and the sweep.
ALTER TABLE api_keys ADD COLUMN refused_since BIGINT;
ALTER TABLE api_keys ADD COLUMN refusals TEXT;
CREATE INDEX api_keys_refused ON api_keys (org_id, refused_since, id) WHERE refused_since IS NOT NULL;
CREATE INDEX api_keys_refused_sweep ON api_keys (refused_since) WHERE refused_since IS NOT NULL;
