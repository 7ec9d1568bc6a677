-- One key's audit entries (GET /v1/audit-logs?api_key_id=): read from an index
-- however long the organisation's log.
CREATE INDEX IF NOT EXISTS audit_log_key ON audit_log (org_id, api_key_id, id);
