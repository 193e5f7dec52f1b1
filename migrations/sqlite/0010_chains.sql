-- Job chains (issue 17): a job runs after other jobs' runs. Kept in step on both backends.
-- A job's `after` entries as JSON ([{"job_id": 3, "on": "success"}], NULL for none).
ALTER TABLE jobs ADD COLUMN chain_after TEXT;
ALTER TABLE jobs ADD COLUMN after_any BIGINT NOT NULL DEFAULT 0;
CREATE INDEX jobs_chained ON jobs (owner) WHERE chain_after IS NOT NULL;
-- A chained run's cause: {"upstream_runs": [ids], "run_id": id, "outcome": "succeeded"}.
ALTER TABLE runs ADD COLUMN chain TEXT;
-- Fan-in: each qualifying upstream run not yet consumed by a chained run of the downstream.
-- Written in the transaction that records the upstream run's end; deleted by the chained
-- run that consumes it (in the same transaction as that run's insert).
CREATE TABLE chain_marks (
    downstream_job_id BIGINT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    upstream_job_id   BIGINT NOT NULL,
    upstream_run_id   BIGINT NOT NULL,
    outcome           TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    PRIMARY KEY (downstream_job_id, upstream_run_id)
);
