-- A queued deletion takes the job's schedule along (`DELETE /api/v1/jobs/<id>?schedule=1`):
-- set with `pending_delete`, the job's schedule is deleted with the job at its slot, on
-- whichever node claims it, if no other job uses it then. Kept in step on both backends.
ALTER TABLE jobs ADD COLUMN delete_schedule BIGINT NOT NULL DEFAULT 0;
