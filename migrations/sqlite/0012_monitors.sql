-- Heartbeat monitors (SQLite). Kept in step with migrations/postgres/0012_monitors.sql.

-- A monitor waits for pings at /ping/<uuid> from a cron job that runs elsewhere. state: new
-- (never pinged), up, late (late_at passed), down (down_at passed, or a failure ping), paused.
-- late_at / down_at are set by a success ping (expected time, and it plus the grace) and
-- cleared otherwise; the watcher moves up → late → down by them, with a compare-and-swap.
CREATE TABLE monitors (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid           TEXT NOT NULL UNIQUE,
    owner          BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    schedule       TEXT NOT NULL,
    grace_s        BIGINT NOT NULL,
    keep_pings     BIGINT NOT NULL,
    state          TEXT NOT NULL,
    started_at     BIGINT,
    last_ping_at   BIGINT,
    last_ping_kind TEXT,
    late_at        BIGINT,
    down_at        BIGINT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE UNIQUE INDEX monitors_owner_name ON monitors (owner, name);
CREATE INDEX monitors_due ON monitors (late_at) WHERE state IN ('up', 'late');
CREATE INDEX monitors_pinged ON monitors (last_ping_at);

-- A monitor's pings, newest kept (keep_pings), with the body (at most 10 KiB) as their log.
CREATE TABLE monitor_pings (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    monitor_id     BIGINT NOT NULL REFERENCES monitors(id) ON DELETE CASCADE,
    kind           TEXT NOT NULL,
    exit_code      BIGINT,
    duration_ms    BIGINT,
    method         TEXT NOT NULL,
    user_agent     TEXT,
    body           TEXT NOT NULL,
    body_truncated BIGINT NOT NULL DEFAULT 0,
    created_at     BIGINT NOT NULL
);
CREATE INDEX monitor_pings_by_monitor ON monitor_pings (monitor_id, id);

-- Subscriptions may narrow monitor events to one monitor (not a foreign key, like job_id).
ALTER TABLE webhooks ADD COLUMN monitor_id BIGINT;
