"""Bounded run history (issue 15): 500 `true` jobs every second with `keep_succeeded: 20`, on
SQLite and on PostgreSQL, with the pruner as a user gets it and with the pruner off.

    python3 bench/retention.py                      # both backends, 10 min with the pruner, 3 min without
    python3 bench/retention.py --minutes 2 --off-minutes 1 --backends sqlite
    python3 bench/retention.py --modes on           # only the runs with the pruner

Every --sample-s seconds it reads the `runs` row count (by status), the database's size on disk
(SQLite: the file, its -wal and -shm; PostgreSQL: pg_total_relation_size('runs') and the
table's live/dead tuples and autovacuum count) and the lateness of the scheduled runs started
since the previous sample (started_at − scheduled_for: the runs are pruned 20 s after, so they
are read as they come). Lateness is summarised per minute of slots and over the whole window
after the first minute. The bound the row count is checked against is jobs × keep + one
pruning batch (the pruner's BATCH, 1,000 rows).

Writes bench/results/retention-<backend>.json and regenerates bench/RESULTS.md (report.py).
Needs the release binary ($CARGO_TARGET_DIR/release/cronstack: `cargo build --release`), psql,
and PostgreSQL at $BENCH_POSTGRES (a database cronstack_bench_retention_* is created and dropped).
"""

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import driver  # noqa: E402
from driver import CRONSTACK, RESULTS_DIR, WORK, Db, Server, log, pct, proc_cpu, proc_mem  # noqa: E402

# The pruner's rows per delete statement (src/engine/pruner.rs, BATCH).
BATCH = 1000
# The switches that keep the pruner from running (hidden flags, see src/cli.rs).
PRUNER_OFF = ["--prune-interval-ms", "3600000000", "--prune-after-runs", "0"]


def api(server, token, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(server.base + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def seed(server, db, jobs, keep):
    """A user, a stack running `true`, one 1-second period schedule and `jobs` enabled jobs on
    it keeping `keep` succeeded runs, all through the v1 API (as a user would)."""
    out = subprocess.run([CRONSTACK, "user", "add", "bench", "--database-url", db.url],
                         check=True, capture_output=True, text=True).stdout
    token = out.strip().splitlines()[-1].strip()
    stack = api(server, token, "POST", "/api/v1/blockstacks", {"name": "bench", "command": "true"})["id"]
    schedule = api(server, token, "POST", "/api/v1/schedules", {"name": "every-second", "config": {"period": 1}})["id"]
    for i in range(jobs):
        api(server, token, "POST", "/api/v1/jobs",
            {"stack_id": stack, "schedule_id": schedule, "name": f"job{i}", "enabled": True,
             "overlap": "allow", "keep_succeeded": keep})
    return token


class Sampler:
    def __init__(self, db):
        self.db = db
        self.seen = set()
        self.low = 0
        self.lateness = []  # (scheduled_for ms, lateness ms)

    def count(self):
        rows = self.db.query("SELECT status, COUNT(*) FROM runs GROUP BY status")
        return {str(s): int(n) for s, n in rows}

    def size(self):
        if self.db.kind == "sqlite":
            def sz(suffix):
                try:
                    return os.path.getsize(self.db.path + suffix)
                except OSError:
                    return 0
            con = sqlite3.connect(self.db.path, timeout=60)
            try:
                pages = con.execute("PRAGMA page_count").fetchone()[0]
                free = con.execute("PRAGMA freelist_count").fetchone()[0]
            finally:
                con.close()
            return {"db_bytes": sz(""), "wal_bytes": sz("-wal"), "shm_bytes": sz("-shm"),
                    "total_bytes": sz("") + sz("-wal") + sz("-shm"), "pages": pages, "free_pages": free}
        r = self.db.query(
            "SELECT pg_total_relation_size('runs'), pg_relation_size('runs'), n_live_tup, n_dead_tup, "
            "autovacuum_count, pg_database_size(current_database()) FROM pg_stat_user_tables WHERE relname = 'runs'")[0]
        return {"total_bytes": int(r[0]), "heap_bytes": int(r[1]), "live_tup": int(r[2]), "dead_tup": int(r[3]),
                "autovacuums": int(r[4]), "database_bytes": int(r[5])}

    def new_lateness(self):
        rows = self.db.query(
            f"SELECT id, scheduled_for, started_at FROM runs WHERE id > {self.low} "
            f"AND trigger_kind = 'schedule' AND started_at IS NOT NULL")
        top = self.low
        for i, s, st in rows:
            i = int(i)
            top = max(top, i)
            if i not in self.seen:
                self.seen.add(i)
                self.lateness.append((int(s), int(st) - int(s)))
        # Runs claimed ahead may start after later ids: look a few seconds' worth back.
        self.low = max(self.low, top - 5 * BATCH)


def pruned_rows(server):
    try:
        _, body = driver.http_get(server.base + "/metrics", timeout=5)
    except OSError:
        return None
    for line in body.decode().splitlines():
        if line.startswith('cronstack_pruned_rows_total{table="runs"}'):
            return float(line.split()[-1])
    return None


def summarise(late):
    v = sorted(late)
    return {"n": len(v), "p50": pct(v, 50), "p99": pct(v, 99), "max": v[-1] if v else None}


def measure(kind, mode, minutes, jobs, keep, sample_s):
    name = f"retention_{kind}_{mode}"
    db = Db(kind, name)
    extra = PRUNER_OFF if mode == "off" else []
    server = Server(db, name.replace("_", "-"), max_runs=2048, extra=extra).start()
    try:
        server.wait_ready()
        t_seed = time.time()
        token = seed(server, db, jobs, keep)
        log(f"{kind}/{mode}: {jobs} jobs created in {time.time() - t_seed:.1f}s; measuring {minutes} min")
        del token
        sampler = Sampler(db)
        t0 = time.time()
        t0_ms = int(t0 * 1000)
        end = t0 + minutes * 60
        cpu0 = proc_cpu(server.p.pid)
        samples = []
        failed = 0
        while True:
            now = time.time()
            try:
                counts = sampler.count()
                size = sampler.size()
                sampler.new_lateness()
            except (subprocess.CalledProcessError, sqlite3.Error) as e:
                # A loaded machine's database may refuse a sample's connection: skip it.
                failed += 1
                log(f"{kind}/{mode}: sample at {now - t0:.0f}s failed: {e}")
                counts = None
            if counts is not None:
                rss, _ = proc_mem(server.p.pid)
                samples.append({"t_s": round(now - t0, 1), "rows": sum(counts.values()), "by_status": counts,
                                **size, "rss_mib": round(rss, 1), "pruned_runs": pruned_rows(server)})
            if now >= end:
                break
            driver.sleep_until(min(end, now + sample_s))
        cpu = proc_cpu(server.p.pid) - cpu0
        _, hwm = proc_mem(server.p.pid)
    finally:
        server.stop()
    try:
        final = sampler.size()
    except (subprocess.CalledProcessError, sqlite3.Error):
        final = {"total_bytes": None}
    db.drop()
    late = sampler.lateness
    per_minute = []
    for m in range(minutes):
        lo, hi = t0_ms + m * 60_000, t0_ms + (m + 1) * 60_000
        inside = [s for s in samples if m * 60 <= s["t_s"] < (m + 1) * 60] or samples[-1:]
        per_minute.append({"minute": m + 1, **summarise([x for s, x in late if lo <= s < hi]),
                           "rows_max": max(s["rows"] for s in inside),
                           "bytes_max": max(s["total_bytes"] for s in inside)})
    after_first = summarise([x for s, x in late if t0_ms + 60_000 <= s < t0_ms + minutes * 60_000])
    bound = jobs * keep + BATCH
    rows_max = max(s["rows"] for s in samples)
    # Runs claimed ahead for the next slots, or going: never pruned, on top of the history.
    unfinished = [sum(n for st, n in s["by_status"].items() if st in ("queued", "running")) for s in samples]
    finished = [s["rows"] - u for s, u in zip(samples, unfinished)]
    after = [s for s in samples if s["t_s"] >= 120]
    total_key = "total_bytes"
    res = {
        "backend": kind, "mode": mode, "minutes": minutes, "jobs": jobs, "keep_succeeded": keep,
        "server_flags": extra, "bound": bound, "rows_max": rows_max,
        "rows_over_bound": sum(1 for s in samples if s["rows"] > bound),
        "finished_max": max(finished), "finished_over_bound": sum(1 for n in finished if n > bound),
        "unfinished_max": max(unfinished),
        "bytes_max": max(s[total_key] for s in samples),
        "bytes_at_2min": after[0][total_key] if after else None,
        "bytes_max_after_2min": max((s[total_key] for s in after), default=None),
        "bytes_end": samples[-1][total_key], "bytes_after_stop": final[total_key],
        "runs_started": len(late), "slots_due_approx": jobs * minutes * 60,
        "lateness_after_first_minute": after_first, "lateness_per_minute": per_minute,
        "cpu_s": cpu, "peak_rss_mib": hwm, "failed_samples": failed, "samples": samples,
    }
    log(f"{kind}/{mode}: rows max {rows_max} (bound {bound}), bytes max {res['bytes_max']:,}, "
        f"after 2 min max {res['bytes_max_after_2min']}, p99 {after_first['p99']} ms")
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=int, default=10, help="minutes measured with the pruner (default 10)")
    ap.add_argument("--off-minutes", type=int, default=3, help="minutes measured with the pruner off (default 3)")
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--modes", default="on,off", help="on: the pruner as configured; off: no pruning pass")
    ap.add_argument("--jobs", type=int, default=500)
    ap.add_argument("--keep", type=int, default=20)
    ap.add_argument("--sample-s", type=float, default=2.0)
    args = ap.parse_args()
    os.makedirs(WORK, exist_ok=True)
    os.makedirs(RESULTS_DIR, exist_ok=True)
    for kind in args.backends.split(","):
        path = os.path.join(RESULTS_DIR, f"retention-{kind}.json")
        try:
            with open(path) as f:
                res = json.load(f)
        except OSError:
            res = {}
        for mode in args.modes.split(","):
            before = driver.machine()
            minutes = args.minutes if mode == "on" else args.off_minutes
            t = time.time()
            r = measure(kind, mode, minutes, args.jobs, args.keep, args.sample_s)
            r["command"] = " ".join(["python3 bench/retention.py", *sys.argv[1:]])
            r["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
            r["seconds"] = round(time.time() - t)
            r["machine_before"] = before
            r["machine_after"] = driver.machine()
            res[mode] = r
            res["ok"] = True
            with open(path, "w") as f:
                json.dump(res, f, indent=1)
    import report

    report.write()


if __name__ == "__main__":
    main()
