-- Cluster bookkeeping (SQLite). Kept in step with migrations/postgres/0002_cluster.sql.
CREATE TABLE nodes (
    id         TEXT PRIMARY KEY,
    address    TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL
);

-- One fixed hourly window per rate-limit key, shared by every node.
CREATE TABLE rate_windows (
    key          TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    hits         BIGINT NOT NULL
);
