-- Whether a run lost with its node is retried (issue: fencing). Kept in step on both backends.
ALTER TABLE jobs ADD COLUMN retry_lost BIGINT NOT NULL DEFAULT 1;
