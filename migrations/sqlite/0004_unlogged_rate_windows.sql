-- Kept in step with migrations/postgres/0004 (rate windows unlogged there). SQLite keeps rate
-- windows in memory, not in this database: nothing to change.
SELECT 1;
