-- Webhooks both ways (SQLite). Kept in step with migrations/postgres/0003_webhooks.sql.

-- Inbound hooks: each stack's hook runs are recorded under one job of kind 'hook', created on
-- the first call. A job needs a schedule, so each owner gets one internal schedule (never
-- fires, never listed) for their hook jobs.
ALTER TABLE schedules ADD COLUMN internal BIGINT NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX schedules_one_internal_per_owner ON schedules (owner) WHERE internal = 1;
CREATE UNIQUE INDEX jobs_one_hook_per_stack ON jobs (stack_id) WHERE kind = 'hook';

-- Outbound: event subscriptions. The secret signs deliveries, so it is kept as is (like the
-- cookie key in settings): protect the database. stack_id / job_id narrow the scope; they are
-- not foreign keys so that a job's deletion can still be announced.
CREATE TABLE webhooks (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    owner      BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    url        TEXT NOT NULL,
    events     TEXT NOT NULL,
    secret     TEXT NOT NULL,
    stack_id   BIGINT,
    job_id     BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX webhooks_by_owner ON webhooks (owner);

-- One row per (event, subscription), written before the first attempt. status: pending →
-- delivering (claimed by node claimed_by until claim_until) → delivered | failed (gave up),
-- or back to pending with a later next_attempt_at.
CREATE TABLE webhook_deliveries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id       BIGINT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event            TEXT NOT NULL,
    payload          TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT,
    claimed_by       TEXT,
    claim_until      BIGINT,
    last_status_code BIGINT,
    last_error       TEXT,
    delivered_at     BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_claimed ON webhook_deliveries (claim_until) WHERE status = 'delivering';
CREATE INDEX webhook_deliveries_by_hook ON webhook_deliveries (webhook_id, id);
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (updated_at) WHERE status IN ('delivered', 'failed');
