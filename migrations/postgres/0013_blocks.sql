-- Stacks as pipelines (issue 16). `blocks`: the stack's blocks as JSON
-- ([{"id", "type", "name", "conversion", "state": {"input", "output"}}]), NULL for a stack
-- that runs its one `command` (every stack before this migration: nothing changes for them).
-- `public`: listed read-only to every user and without credentials. `environment`: Cloud 66's
-- stack field (NULL reads "production"). A run's `steps`: JSON, NULL for a one-command run.
-- Kept in step on both backends.
ALTER TABLE stacks ADD COLUMN blocks TEXT;
ALTER TABLE stacks ADD COLUMN public BIGINT NOT NULL DEFAULT 0;
ALTER TABLE stacks ADD COLUMN environment TEXT;
ALTER TABLE runs ADD COLUMN steps TEXT;
