-- Idempotent run-now: a caller's key answers its first call for a day. Kept in step on both backends.
CREATE TABLE idempotency_keys (
    owner       BIGINT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    ref_id      BIGINT,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (owner, key)
);

-- Backfilled slots share the scheduled slots' uniqueness: each slot runs at most once, ever.
DROP INDEX runs_one_per_slot;
CREATE UNIQUE INDEX runs_one_per_slot ON runs (job_id, scheduled_for) WHERE trigger_kind IN ('schedule', 'backfill');
