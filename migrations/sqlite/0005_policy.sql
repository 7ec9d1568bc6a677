-- An organisation's key policy (crate::policy::Policy) as JSON: the rules new
-- keys follow and the health badge thresholds. No row: the default policy
-- (no rule, the page's thresholds).
CREATE TABLE org_policies (
    org_id      TEXT PRIMARY KEY REFERENCES organisations (id),
    policy      TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
);
