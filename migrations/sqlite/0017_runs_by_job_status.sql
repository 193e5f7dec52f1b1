-- A job's runs of one status, newest first, from the index alone: the pruner finds the runs
-- beyond a job's limits (its succeeded runs after the newest keep_succeeded, its other
-- finished ones after keep_failed) by walking these entries, where runs_by_job made it read
-- every run of the job from the table to test its status (bench row `history`, 10,000 runs a
-- job: one pruner statement for 100 jobs took 19 s on SQLite, and a pass over 1,000
-- every-second jobs kept the database busy for longer than the jobs' second).
-- Kept in step on both backends.
CREATE INDEX runs_by_job_status ON runs (job_id, status, id);
