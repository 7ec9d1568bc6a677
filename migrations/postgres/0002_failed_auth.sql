-- Failed key checks per client (an IPv4 address or an IPv6 /64), shared by
-- every replica on this database so that together they allow the configured
-- number of failures per window, not that number per replica. A row's window
-- starts at its first failure; rows of ended windows are deleted now and then.

CREATE TABLE failed_auth (
    addr          TEXT PRIMARY KEY,
    window_start  BIGINT NOT NULL,
    failures      BIGINT NOT NULL
);

CREATE INDEX failed_auth_by_window ON failed_auth (window_start);
