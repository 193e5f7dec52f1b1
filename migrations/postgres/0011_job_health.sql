-- Job health (issue 18): a job's grace and longest run, its last finished run, and the
-- incidents the watcher tracks on it (a missed slot, a stuck run), announced once each.
-- Kept in step on both backends.
ALTER TABLE jobs ADD COLUMN grace_s BIGINT;
ALTER TABLE jobs ADD COLUMN max_duration_s BIGINT;
ALTER TABLE jobs ADD COLUMN last_run_id BIGINT;
ALTER TABLE jobs ADD COLUMN last_run_status TEXT;
ALTER TABLE jobs ADD COLUMN last_run_finished_at BIGINT;
ALTER TABLE jobs ADD COLUMN last_success_at BIGINT;
ALTER TABLE jobs ADD COLUMN last_failure_at BIGINT;
ALTER TABLE jobs ADD COLUMN missed_slot BIGINT;
ALTER TABLE jobs ADD COLUMN missed_announced BIGINT NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN stuck_run BIGINT;
-- The watcher's look at open incidents reads only these rows.
CREATE INDEX jobs_incidents ON jobs (id) WHERE missed_slot IS NOT NULL OR stuck_run IS NOT NULL;

-- What the run history already says.
UPDATE jobs SET
    last_success_at = (SELECT MAX(finished_at) FROM runs WHERE runs.job_id = jobs.id AND runs.status = 'succeeded'),
    last_failure_at = (SELECT MAX(finished_at) FROM runs WHERE runs.job_id = jobs.id
        AND runs.status IN ('failed', 'timed_out', 'killed', 'lost')),
    last_run_id = (SELECT MAX(id) FROM runs WHERE runs.job_id = jobs.id
        AND runs.status IN ('succeeded', 'failed', 'timed_out', 'killed', 'lost'));
UPDATE jobs SET
    last_run_status = (SELECT status FROM runs WHERE runs.id = jobs.last_run_id),
    last_run_finished_at = (SELECT finished_at FROM runs WHERE runs.id = jobs.last_run_id)
WHERE last_run_id IS NOT NULL;

-- Notification channels: a subscription with a kind (how its deliveries are shaped) and a name.
ALTER TABLE webhooks ADD COLUMN kind TEXT NOT NULL DEFAULT 'webhook';
ALTER TABLE webhooks ADD COLUMN name TEXT;
