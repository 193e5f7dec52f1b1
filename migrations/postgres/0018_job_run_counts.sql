-- Each job's number of runs, kept by the database in the statement that adds or removes them:
-- the `count` of a job's runs page read here instead of counted (bench row `history`, 10,000
-- runs a job: COUNT(*) of the job's runs took about 0.8 ms a request and left the page at
-- 0.3 of an empty history's req/s). Triggers, not the store's code, keep it, so no path that
-- adds or removes runs (claims, run now, retries, backfill, the pruner, a job's cascade) can
-- forget it. Kept in step with the SQLite migration.
CREATE TABLE job_run_counts (
    job_id BIGINT PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
    runs   BIGINT NOT NULL
);
INSERT INTO job_run_counts (job_id, runs) SELECT job_id, COUNT(*) FROM runs GROUP BY job_id;

-- Once per statement, from its transition table: a claim batch or a pruner batch updates
-- each job's count once, not once per row. Rows are locked in job order, so two statements
-- counting the same jobs cannot deadlock on them.
CREATE FUNCTION job_run_counts_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_run_counts AS c (job_id, runs)
    SELECT job_id, COUNT(*) FROM added_runs GROUP BY job_id ORDER BY job_id
    ON CONFLICT (job_id) DO UPDATE SET runs = c.runs + excluded.runs;
    RETURN NULL;
END $$;

CREATE FUNCTION job_run_counts_remove() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM job_run_counts
    WHERE job_id IN (SELECT job_id FROM removed_runs) ORDER BY job_id FOR UPDATE;
    UPDATE job_run_counts AS c SET runs = c.runs - r.n
    FROM (SELECT job_id, COUNT(*) AS n FROM removed_runs GROUP BY job_id) AS r
    WHERE c.job_id = r.job_id;
    RETURN NULL;
END $$;

CREATE TRIGGER runs_counted_in AFTER INSERT ON runs
    REFERENCING NEW TABLE AS added_runs FOR EACH STATEMENT EXECUTE FUNCTION job_run_counts_add();
CREATE TRIGGER runs_counted_out AFTER DELETE ON runs
    REFERENCING OLD TABLE AS removed_runs FOR EACH STATEMENT EXECUTE FUNCTION job_run_counts_remove();
