-- cronstack schema (SQLite). Kept in step with migrations/postgres/0001_init.sql.
-- Times are BIGINT epoch milliseconds UTC; booleans are BIGINT 0/1 (portable through sqlx Any).
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT NOT NULL UNIQUE,
    email         TEXT UNIQUE,
    password_hash TEXT,
    created_at    BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT NOT NULL DEFAULT '',
    token_hash   TEXT NOT NULL UNIQUE,
    scopes       TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);

CREATE TABLE stacks (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    uid            TEXT NOT NULL UNIQUE,
    owner          BIGINT NOT NULL REFERENCES users(id),
    name           TEXT NOT NULL,
    command        TEXT NOT NULL,
    env            TEXT NOT NULL DEFAULT '{}',
    workdir        TEXT,
    webhook        TEXT,
    webhook_method TEXT NOT NULL DEFAULT 'POST',
    webhook_token  TEXT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    UNIQUE (owner, name)
);

CREATE TABLE schedules (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    owner      BIGINT NOT NULL REFERENCES users(id),
    name       TEXT,
    once       BIGINT NOT NULL DEFAULT 0,
    config     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE jobs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    uid             TEXT NOT NULL UNIQUE,
    owner           BIGINT NOT NULL REFERENCES users(id),
    stack_id        BIGINT NOT NULL REFERENCES stacks(id),
    schedule_id     BIGINT NOT NULL REFERENCES schedules(id),
    name            TEXT,
    kind            TEXT NOT NULL DEFAULT 'command',
    command         TEXT,
    enabled         BIGINT NOT NULL DEFAULT 0,
    pending_delete  BIGINT NOT NULL DEFAULT 0,
    paused_by_all   BIGINT NOT NULL DEFAULT 0,
    timeout_s       BIGINT,
    overlap         TEXT NOT NULL DEFAULT 'forbid',
    missed          TEXT NOT NULL DEFAULT 'skip',
    retries         BIGINT NOT NULL DEFAULT 0,
    retry_backoff_s BIGINT NOT NULL DEFAULT 10,
    next_run_at     BIGINT,
    last_status     BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE (owner, name)
);
CREATE INDEX jobs_next_run ON jobs (next_run_at) WHERE next_run_at IS NOT NULL;
CREATE INDEX jobs_stack ON jobs (stack_id);
CREATE INDEX jobs_schedule ON jobs (schedule_id);

CREATE TABLE runs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id        BIGINT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    owner         BIGINT NOT NULL,
    trigger_kind  TEXT NOT NULL,
    scheduled_for BIGINT NOT NULL,
    attempt       BIGINT NOT NULL DEFAULT 1,
    args          TEXT NOT NULL DEFAULT '[]',
    status        TEXT NOT NULL,
    node_id       TEXT,
    lease_until   BIGINT,
    started_at    BIGINT,
    finished_at   BIGINT,
    exit_code     BIGINT,
    signal        BIGINT,
    log           TEXT,
    log_truncated BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL
);
-- The guarantee that a scheduled slot fires at most once, whatever the number of nodes.
CREATE UNIQUE INDEX runs_one_per_slot ON runs (job_id, scheduled_for) WHERE trigger_kind = 'schedule';
CREATE INDEX runs_by_job ON runs (job_id, id);
CREATE INDEX runs_active ON runs (status) WHERE status IN ('queued', 'running');

CREATE TABLE actions (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    owner            BIGINT NOT NULL REFERENCES users(id),
    stack_id         BIGINT NOT NULL REFERENCES stacks(id),
    action           TEXT NOT NULL,
    started_via      TEXT NOT NULL DEFAULT 'api',
    started_at       BIGINT NOT NULL,
    finished_at      BIGINT,
    finished_success BIGINT,
    finished_message TEXT,
    finished_result  TEXT,
    metadata         TEXT NOT NULL DEFAULT '{}',
    run_id           BIGINT
);
CREATE INDEX actions_by_stack ON actions (stack_id, id);
CREATE INDEX actions_by_run ON actions (run_id) WHERE run_id IS NOT NULL;
