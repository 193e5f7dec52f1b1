-- Bounded run history (issue 15). Kept in step on both backends.
-- How many finished runs of a job are kept, succeeded ones and the others (failed, timed
-- out, killed, lost, skipped); NULL: the server's default (--keep-succeeded / --keep-failed).
ALTER TABLE jobs ADD COLUMN keep_succeeded BIGINT;
ALTER TABLE jobs ADD COLUMN keep_failed BIGINT;
-- The pruner looks at jobs changed since its last pass (their limits may have come down);
-- only owners' changes move updated_at, never the scheduler's claims.
CREATE INDEX jobs_updated ON jobs (updated_at);
