-- A job's window, jitter and run limit; a run's jittered due time. Kept in step on both backends.
ALTER TABLE jobs ADD COLUMN jitter_s BIGINT NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN not_before BIGINT;
ALTER TABLE jobs ADD COLUMN not_after BIGINT;
ALTER TABLE jobs ADD COLUMN max_runs BIGINT;
ALTER TABLE jobs ADD COLUMN runs_fired BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN due_at BIGINT;
