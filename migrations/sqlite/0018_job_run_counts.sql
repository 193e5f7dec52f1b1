-- Each job's number of runs, kept by the database in the statement that adds or removes them:
-- the `count` of a job's runs page read here instead of counted (bench row `history`, 10,000
-- runs a job: COUNT(*) of the job's runs left the page at 0.7 of an empty history's req/s).
-- Triggers, not the store's code, keep it, so no path that adds or removes runs (claims, run
-- now, retries, backfill, the pruner, a job's cascade) can forget it. SQLite has row
-- triggers only; one writer at a time, so no lock order to mind. Kept in step with the
-- PostgreSQL migration.
CREATE TABLE job_run_counts (
    job_id INTEGER PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
    runs   INTEGER NOT NULL
);
INSERT INTO job_run_counts (job_id, runs) SELECT job_id, COUNT(*) FROM runs GROUP BY job_id;

CREATE TRIGGER runs_counted_in AFTER INSERT ON runs BEGIN
    INSERT INTO job_run_counts (job_id, runs) VALUES (NEW.job_id, 1)
    ON CONFLICT (job_id) DO UPDATE SET runs = runs + 1;
END;
CREATE TRIGGER runs_counted_out AFTER DELETE ON runs BEGIN
    UPDATE job_run_counts SET runs = runs - 1 WHERE job_id = OLD.job_id;
END;
