"""Writes bench/RESULTS.md from the rows stored in bench/results/ (see driver.py)."""

import json
import os
import re

BENCH = os.path.dirname(os.path.abspath(__file__))
RESULTS_DIR = os.path.join(BENCH, "results")
NOTES = os.path.join(BENCH, "NOTES.md")


def load(name):
    try:
        with open(os.path.join(RESULTS_DIR, f"{name}.json")) as f:
            return json.load(f)
    except OSError:
        return None


def f0(x):
    return "–" if x is None or x != x else f"{x:,.0f}"


def f1(x):
    return "–" if x is None or x != x else f"{x:,.1f}"


def f2(x):
    return "–" if x is None or x != x else f"{x:,.2f}"


def ratio(a, b):
    if not a or not b or a != a or b != b:
        return "–"
    return f"{a / b:.2f}×"


def better(peer, ours):
    """How many times lower (better) our figure is; lateness 0 ms counts as 1 ms."""
    if peer is None or ours is None or peer != peer or ours != ours:
        return "–"
    return f"{max(peer, 1) / max(ours, 1):.1f}×"


def stamp(r):
    m = r.get("machine_before", {})
    a = r.get("machine_after", {})
    quick = " (QUICK)" if r.get("quick") else ""
    return (f"*{r.get('date', '?')}{quick}, {r.get('seconds', '?')} s; load average before "
            f"{' '.join(m.get('loadavg', []))}, after {' '.join(a.get('loadavg', []))}; "
            f"compiler processes running before/after: {m.get('compilers_running', '?')}/{a.get('compilers_running', '?')}*")


def failed(r):
    return f"**This row failed:** `{r.get('error')}`\n"


def stamped(out, name):
    """The stored row `name`, its stamp appended to `out`; None, saying why, when it has not
    run or it failed."""
    r = load(name)
    if not r:
        out.append("*not run yet*\n")
        return None
    if not r.get("ok"):
        out.append(failed(r))
        return None
    out.append(stamp(r) + "\n")
    return r


def section_cron(out):
    out.append("## Cron next-fire computations per second\n")
    out.append("20 expressions (10 UTC, 10 in time zones incl. Lord Howe's 30-minute DST), each "
               "from 32 pseudo-random instants in 2020-2035 and 32 chained fire times, per "
               "iteration; Criterion median. Peers get prebuilt `DateTime<Tz>` inputs.\n")
    r = stamped(out, "cron")
    if not r:
        return
    out.append("| set | cronstack-cron | croner 4.0.3 | cron 0.17 | vs croner | vs cron |")
    out.append("|---|---:|---:|---:|---:|---:|")
    for g in ("all", "utc", "zoned"):
        a, b, c = r[f"{g}/cronstack"], r[f"{g}/croner"], r[f"{g}/cron"]
        out.append(f"| {g} | {a / 1e6:.2f} M/s | {b / 1e6:.3f} M/s | {c / 1e6:.3f} M/s | {ratio(a, b)} | {ratio(a, c)} |")
    out.append(f"\nCommand: `{r['command']}` (benches/next_fire.rs in crates/cron).\n")


def lateness_table(out, r, label):
    out.append("| scheduler | slots due | fired | p50 ms | p99 ms | max ms | mean ms | CPU s in window | peak RSS MiB | p99 ÷ cronstack's |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    ours = r.get("cronstack", {})
    for key, name in (("cronstack", "cronstack (SQLite)"),
                      ("cronstack_no_prespawn", "cronstack `--no-prespawn` (spawned at the slot)"),
                      ("apscheduler", "APScheduler 3.x"),
                      ("tcs", "tokio-cron-scheduler 0.15"),
                      ("celery", "Celery 5 beat + worker (threads pool, Redis)"),
                      ("bare", "machine limit: bare spawn burst, 16 threads")):
        x = r.get(key)
        if not x:
            continue
        if x.get("ok") is False:
            out.append(f"| {name} | failed: `{x.get('error')}` | | | | | | | | |")
            continue
        rel = "–" if key == "cronstack" else f"{max(x['p99'], 1) / max(ours.get('p99', 1), 1):.2f}"
        out.append(f"| {name} | {f0(x['expected'])} | {f0(x['fired'])} | {f0(x['p50'])} | {f0(x['p99'])} | "
                   f"{f0(x['max'])} | {f1(x['mean'])} | {f1(x['cpu_s'])} | {f0(x['peak_rss_mib'])} | {rel} |")


def section_lateness(out):
    for name, title, target in (
        ("lateness", "Fire lateness: 10,000 `true` jobs once a minute at spread seconds", "p99 < 5 ms"),
        ("lateness-second", "Fire lateness: 1,000 `true` jobs every second", "p99 < 20 ms"),
    ):
        out.append(f"## {title}\n")
        r = stamped(out, name)
        if not r:
            continue
        out.append(f"Window: {r['window_s']} s of slots, starting a few seconds after each scheduler said it "
                   f"was ready; lateness = child process start − slot, in whole ms (cronstack stores epoch "
                   f"ms, so peers' µs figures are floored the same way). A peer's start is the instant its "
                   f"spawn call returned. cronstack spawns a run's `sh` when it claims the slot (up to the "
                   f"lookahead ahead) and holds it before the script's first line; its start is the instant "
                   f"the slot released it (one write to the gate pipe of all the runs due at that instant, "
                   f"after their overlap checks; the observed figures below show when the jobs then really ran). The `--no-prespawn` row is cronstack "
                   f"spawning at the slot, measured like the peers. Target: {target} and ≥ 5× better "
                   f"than every peer.\n")
        lateness_table(out, r, title)
        out.append("")
        section_lateness_observed(out, "lateness-observed" if name == "lateness" else "lateness-second-observed")


OBSERVED_PEERS = (
    ("cronstack", "cronstack (SQLite)"),
    ("cronstack_no_prespawn", "cronstack `--no-prespawn`"),
    ("apscheduler", "APScheduler 3.x"),
    ("tcs", "tokio-cron-scheduler 0.15"),
    ("celery", "Celery 5 beat + worker (threads pool, Redis)"),
    ("bare", "machine limit: bare spawn burst, 16 threads"),
    ("bare_gate", "machine limit of prespawn: bare gate release"),
)


def section_lateness_observed(out, name):
    what = "10,000 jobs once a minute" if name == "lateness-observed" else "1,000 jobs every second"
    out.append(f"### Lateness as the jobs saw it: {what} (`bench/run {name}`)\n")
    r = stamped(out, name)
    if not r:
        return
    out.append(f"The same job set for {r['window_s']} s, every scheduler in turn, each job's command "
               "`echo <id> <slot> > FIFO` (cronstack: `echo \"$CRONSTACK_RUN_ID\" > FIFO`, the slot read from its "
               "runs table): `echo` is a shell builtin, so the job's first instruction and no process started "
               "to take the measure. `fifo_stamp` (bench/peers, Rust, nice −10) stamps each line with the wall "
               "clock (µs) right after the `read` that returned it: an upper bound of when the job's first "
               "command ran. Observed lateness = stamp − the job's slot, in whole ms, the same measure for "
               "every scheduler; \"recorded\" is each scheduler's own start figure as in the table above. "
               "Celery's slot is the one its beat sent; the other peers compute it in the job body (as above). "
               "Fewer jobs observed than slots due: the others had not run when the scheduler was stopped, "
               "4 s after the window (a peer) or 3 s (cronstack); they were later than every figure shown. "
               "The bare gate release (bench/peers/src/bin/bare_gate.rs) is cronstack's way of starting a burst "
               "without cronstack: the slot's `sh`s spawned a lookahead ahead (cronstack's in this row), held at "
               "the executor's own gate line, released by one write at the slot; what it observes is the kernel "
               "waking the held shells and each reaching its first command on the machine's cores, the floor "
               "of that design here. "
               f"Target (second round): observed p99 ≤ {'5' if name == 'lateness-observed' else '10'} ms"
               f"{'' if name == 'lateness-observed' else ', none missed'}.\n")
    out.append("| scheduler | slots due | jobs observed | recorded p99 ms | observed p50 ms | observed p99 ms | "
               "observed max ms | observed mean ms | CPU s in window | observed p99 ÷ cronstack's |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    ours = r.get("cronstack", {}).get("observed", {})
    for key, label in OBSERVED_PEERS:
        x = r.get(key)
        if not x:
            continue
        if x.get("ok") is False:
            out.append(f"| {label} | failed: `{x.get('error')}` | | | | | | | | |")
            continue
        o = x.get("observed", {})
        rel = "–" if key == "cronstack" else better(o.get("p99"), ours.get("p99"))
        out.append(f"| {label} | {f0(x.get('expected'))} | {f0(x.get('observed_n'))} | {f0(x.get('p99'))} | "
                   f"{f0(o.get('p50'))} | {f0(o.get('p99'))} | {f0(o.get('max'))} | {f1(o.get('mean'))} | "
                   f"{f1(x.get('cpu_s'))} | {rel} |")
    out.append("")


def section_pgcron(out):
    out.append("## pg_cron vs cronstack on PostgreSQL: 1,000 jobs every minute, all at second 0\n")
    r = stamped(out, "pgcron")
    if not r:
        return
    mode = "background workers" if r.get("background_workers") else "libpq connections over the Unix socket"
    out.append(f"{r['jobs']:,} jobs due at the same instant, second 0 of every minute, for {r['minutes']} minutes "
               f"(`bench/run pgcron`). **pg_cron {r.get('pg_cron_version', '1.4')}** (Debian `postgresql-15-cron`) "
               f"has minute granularity only (`* * * * *`; second intervals came in 1.5), so this is the one row "
               f"it can run. It runs in a throw-away PostgreSQL 15 cluster (`initdb` in "
               f"/tmp/cronstack-bench/pgcron, 127.0.0.1:5499, removed after the row; the machine's shared "
               f"cluster is not touched): `shared_preload_libraries = pg_cron`, `cron.database_name = postgres`, "
               f"jobs run through {mode} (`cron.use_background_workers = {'on' if r.get('background_workers') else 'off'}`), "
               f"`cron.max_running_jobs = {r['jobs']}`, `max_connections = {r['jobs'] + 50}`, "
               f"`max_worker_processes = {r['jobs'] + 16}`, `cron.log_statement = off`, the rest default. "
               "Each job's command is `INSERT INTO bench_stamps VALUES (<job>, now())`: recorded lateness = "
               "`cron.job_run_details.start_time` − the minute slot (the slot taken as the start's minute: lateness "
               "stays below a minute), observed = the job's `now()` (its transaction's start) − the slot. "
               "cronstack: `cronstack serve` on the machine's PostgreSQL (a `cronstack_bench_*` database), "
               "`--lookahead-ms 1000` (1,000 runs share the instant, as in the 1k/s row), jobs on schedule "
               "`0 * * * * *`, command `echo \"$CRONSTACK_RUN_ID\" > FIFO` stamped by fifo_stamp as in the "
               "observed rows; recorded lateness from its runs table. CPU: pg_cron's whole cluster (the job "
               "backends included); cronstack's server process (its PostgreSQL is shared with the other rows "
               "and not counted).\n")
    out.append("| scheduler | runs due | started | recorded p50 ms | recorded p99 ms | recorded max ms | "
               "observed p50 ms | observed p99 ms | observed max ms | CPU s in window |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key, label in (("cronstack", "cronstack (PostgreSQL)"), ("pg_cron", f"pg_cron {r.get('pg_cron_version', '')}")):
        x = r.get(key)
        if not x:
            continue
        if x.get("ok") is False:
            out.append(f"| {label} | failed: `{x.get('error')}` | | | | | | | | |")
            continue
        o = x.get("observed", {})
        out.append(f"| {label} | {f0(x.get('expected'))} | {f0(x.get('fired'))} | {f0(x.get('p50'))} | "
                   f"{f0(x.get('p99'))} | {f0(x.get('max'))} | {f0(o.get('p50'))} | {f0(o.get('p99'))} | "
                   f"{f0(o.get('max'))} | {f1(x.get('cpu_s'))} |")
    per = (r.get("pg_cron") or {}).get("per_minute")
    if per:
        out.append("\npg_cron's recorded lateness minute by minute (runs, p50 / p99 / max ms): " +
                   "; ".join(f"{i + 1}: {m['n']:,}, {f0(m['p50'])} / {f0(m['p99'])} / {f0(m['max'])}"
                             for i, m in enumerate(per)) + ".")
    out.append("")

def section_executor(out):
    out.append("## Runs completed per second (`true`)\n")
    r = stamped(out, "executor")
    if not r:
        return
    out.append("| path | runs/s | vs bare loop |")
    out.append("|---|---:|---:|")
    out.append(f"| bare loop, `std::process::Command::new(\"sh\").args([\"-c\", \"true\"]).status()`, 16 threads | {f0(r['bare'])} | 1.00× |")
    out.append(f"| cronstack-exec `spawn` + `wait`, 16 tasks | {f0(r['exec'])} | {r['ratio']:.2f}× |")
    e = r.get("e2e")
    if e:
        out.append(f"| end to end: `cronstack serve` (SQLite), {e.get('expected', 0) // max(1, e['window_s']):,} "
                   f"every-second jobs (more than the machine can run), runs that succeeded per second "
                   f"| {f0(r['e2e']['runs_per_s'])} | {r['e2e_ratio']:.2f}× |")
    out.append(f"\nCommand: `{r['command']}` (median of rounds, alternating bare and exec; target ≥ 0.8). "
               "End to end: the slots claimed, started and recorded through the scheduler, runner and "
               "store.\n")
    out.append("```\n" + r["output"].strip() + "\n```\n")


def section_idle(out):
    out.append("## 10,000 scheduled idle jobs (yearly), CPU and memory\n")
    r = stamped(out, "idle")
    if not r:
        return
    out.append(f"The three ran side by side (idle processes barely compete), {r['window_s']} s measured after start-up.\n")
    out.append("| scheduler | CPU s over the window | CPU s to start | RSS MiB | peak RSS MiB |")
    out.append("|---|---:|---:|---:|---:|")
    for key, name in (("cronstack", "cronstack (SQLite)"), ("apscheduler", "APScheduler 3.x"),
                      ("tcs", "tokio-cron-scheduler 0.15")):
        x = r.get(key)
        if x:
            out.append(f"| {name} | {f2(x['cpu_s'])} | {f2(x['startup_cpu_s'])} | {f0(x['rss_mib'])} | {f0(x['peak_rss_mib'])} |")
    out.append("")


def section_million(out):
    out.append("## 1,000,000 scheduled jobs\n")
    r = stamped(out, "million")
    if not r:
        return
    out.append("Rows inserted with SQL (1,000 yearly schedules, one stack); restart-to-ready = process "
               "start until `/readyz` answers, which `serve` only does after the scheduler logged "
               "`schedule loaded`. By-id reads: wrk, 2 threads, 32 connections, random ids. Targets (second "
               "round): RSS after ready ≤ 128 MiB, restart → ready ≤ 1 s, on both databases.\n")
    out.append("| database | jobs loaded | restart → ready s | first start → ready s | RSS after ready MiB | peak RSS MiB | by-id req/s | by-id p50 ms | by-id p99 ms |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for kind in ("sqlite", "postgres"):
        x = r.get(kind)
        if x:
            w = x["byid"]
            out.append(f"| {kind} | {f0(x['loaded'])} | {f2(x['restart_ready_s'])} | {f2(x['first_start_ready_s'])} | "
                       f"{f0(x['rss_ready_mib'])} | {f0(x['peak_rss_mib'])} | {f0(w['rps'])} | {f2(w['p50_ms'])} | {f2(w['p99_ms'])} |")
    out.append("")


def section_api(out):
    out.append("## API reads vs a bare axum handler\n")
    r = stamped(out, "api")
    if not r:
        return
    out.append("wrk -t2 -c32 on loopback, bearer token, 1,000 jobs in the database; each endpoint is "
               "measured on cronstack and right after on the bare handler (both up, one loaded at a time), so a "
               "ratio compares the same minute of a machine whose speed drifts. The bare handler "
               "(bench/peers/src/bin/bare_axum.rs) serves the very bytes cronstack answered, from memory, "
               "same runtime shape. cronstack authenticates the token, counts the request against the rate limit, "
               "reads through its read cache (warm after the first request: nothing changes during the run; "
               "every write invalidates what it touched, see README, \"Read cache\") and serves the JSON body rendered "
               "by the first request (kept until any change; the read and its access checks still run). "
               "Target (second round): ≥ 0.8 of bare on all eight.\n")
    out.append("| database | endpoint | bytes | cronstack req/s | p99 ms | bare axum req/s | p99 ms | ratio |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|")
    for kind in ("sqlite", "postgres"):
        x = r.get(kind)
        if not x:
            continue
        for label, e in x["endpoints"].items():
            c, b = e["cronstack"], e["bare"]
            bad = f" ({c['non2xx']} non-2xx!)" if c.get("non2xx") else ""
            path = re.sub(r"[0-9a-f]{26,32}", "{uid}", e["path"])
            out.append(f"| {kind} | {label} `{path}` | {e['bytes']:,} | {f0(c['rps'])}{bad} | {f2(c['p99_ms'])} | "
                       f"{f0(b['rps'])} | {f2(b['p99_ms'])} | {e['ratio']:.2f} |")
    out.append("")


def startup(x):
    """A cluster case's start-up lateness (runs of before the column existed: none)."""
    s = x.get("startup")
    return f"{f0(s['p99'])} / {f0(s['max'])}" if s and s.get("n") else "–"


def section_cluster(out):
    out.append("## Cluster: 1 and 3 nodes on one PostgreSQL\n")
    r = stamped(out, "cluster")
    if not r:
        return
    out.append(f"{r['jobs']:,} every-second `true` jobs (so {r['jobs']:,} claims due per second), on a quiet and then a "
               f"loaded machine, and last 3,000 on 3 nodes (more process starts than the machine has: claiming and the split "
               f"under overload; last, because the case after it used to run late), `--lookahead-ms 1000`, "
               f"{r['window_s']} s window; the nodes share the machine's 2 cores. claims/s = runs claimed in the window ÷ its "
               f"length; split = the largest deviation of a node's share from an even one. Target: p99 < 20 ms, split within ±10%, "
               f"0 duplicates (the one-run-per-slot unique index makes a duplicate a failed insert).\n")
    if r.get("hogs"):
        out.append(f"Loaded: the same 1,000/s runs with {r['hogs']} busy-loop processes (`sh -c 'while :; do :; done'`, "
                   "ordinary priority) running beside the nodes from before start-up to the end, so the nodes, "
                   "PostgreSQL and the jobs share the 2 cores with them (\"even on a loaded machine\").\n")
    out.append("Start-up: the same lateness over the slots from the first one (1 s after the database was seeded, "
               "while the nodes start) to the window's start (2–3 s after the last node was ready), for the nodes' "
               "joining; the window is after it.\n")
    out.append("| nodes | jobs | machine | slots due | claimed | claims/s | runs per node | split | p50 ms | p99 ms | max ms "
               "| start-up p99 / max ms |")
    out.append("|---:|---:|---|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    for key, n, machine in (("nodes1", 1, "as is"), ("nodes3", 3, "as is"), ("nodes1_loaded", 1, "loaded"),
                            ("nodes3_loaded", 3, "loaded"), ("nodes3_3000", 3, "as is")):
        x = r.get(key)
        if x:
            per = x["per_node"]
            even = sum(per) / len(per) if per else 0
            split = max(abs(p - even) / even for p in per) * 100 if even else 0
            out.append(f"| {n} | {f0(x.get('jobs', r['jobs']))} | {machine} | {f0(x['expected'])} | {f0(x['claimed'])} | "
                       f"{f0(x['claims_per_s'])} | {', '.join(map(str, per))} | ±{split:.0f}% | {f0(x['p50'])} | "
                       f"{f0(x['p99'])} | {f0(x['max'])} | {startup(x)} |")
    out.append("")


def section_ping(out):
    out.append("## Heartbeat pings\n")
    r = stamped(out, "ping")
    if not r:
        return
    out.append(f"`POST /ping/<uuid>` with a 21-byte body, spread at random over {r['monitors']} monitors, wrk -t2 on "
               f"loopback for {r['duration_s']} s with 1, 4 and then 32 connections (closed loop: one connection is "
               "a ping at a time, the latency without queueing; with 32 the server is saturated and the figure is "
               "its throughput). Each ping is one write transaction: the ping row "
               "(its body kept as its log) and the monitor's state; the watcher trims histories to 100 pings "
               "meanwhile. Per-monitor rate limit lifted (`--ping-rate-limit 4000000000`). Target: p99 < 5 ms.\n")
    out.append("Client figures are wrk's (they include wrk's own waits for a CPU); server figures are the "
               "`cronstack_http_request_duration_seconds{route=\"/ping/{uuid}\"}` histogram over the same window: "
               "the share of pings answered within 5 ms and the histogram bucket that holds the p99.\n")
    out.append("| database | connections | pings/s | client p50 ms | client p99 ms | server: within 5 ms | server p99 ≤ ms | non-2xx |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for kind in ("sqlite", "postgres"):
        x = r.get(kind)
        if not x:
            continue
        for conns in (1, 4, 32):
            w = x.get(f"c{conns}")
            if not w:
                continue
            srv = w.get("server", {})
            within = srv.get("within_5ms")
            within = "–" if within is None or within != within else f"{within * 100:.2f}%"
            out.append(f"| {kind} | {conns} | {f0(w['rps'])} | {f2(w['p50_ms'])} | {f2(w['p99_ms'])} | {within} | "
                       f"{f1(srv.get('p99_le_ms'))} | {w['non2xx']} |")


def section_history(out):
    out.append("## A long run history (10,000,000 runs) with retention on\n")
    r = stamped(out, "history")
    if not r:
        return
    first = r.get("sqlite") or r.get("postgres")
    n = first["jobs"] * first["runs_per_job"]
    e = first["empty"]
    reads = ("the server restarted for the reads, *empty* then *full*" if "rounds" not in e else
             f"the reads interleaved: a server on each history (*empty* read from a copy taken before the seeding), "
             f"{e['rounds']} rounds of {e['round_s']} s each reading both, which one first alternating (req/s over "
             f"all rounds, p50 / p99 the median round's)")
    out.append(f"{first['jobs']:,} jobs on one every-second schedule (`true`). *empty*: the jobs with no runs but their "
               f"own; *full*: the same database after {n:,} finished runs were inserted with SQL ({first['runs_per_job']:,} a job, "
               f"one a second, one in 20 failed). The server keeps per job {first['keep_succeeded']:,} succeeded and "
               f"{first['keep_failed']:,} other runs (`--keep-succeeded`, `--keep-failed`; the default 30-day age limit on): "
               f"as many as were seeded, so on *full* the pruner removes as many runs as the jobs add (the steady state "
               f"of a full history) and on *empty* it finds nothing to remove. Each history: every job enabled for the "
               f"claim window (`--lookahead-ms 1000`; claims/s = runs claimed for the window's slots ÷ its length, "
               f"lateness = started_at − slot), then the jobs disabled and {reads}: wrk -t2 -c32 on one job's v1 runs page (`/api/v1/jobs/byid/{{id}}/runs`, page 1: 10 runs and the total) and "
               f"on run by id (`/api/v1/runs/{{id}}`, random ids between the lowest and the highest: a pruned one answers 404, counted as non-2xx). Target: full within 10% of "
               f"empty (ratio p99 ≤ 1.10, claims/s ≥ 0.90).\n")
    out.append("| database | history | runs | claims/s (due) | claim p50 / p99 ms | pruned during claim | runs page req/s | p50 / p99 ms | run by id req/s | p50 / p99 ms |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for kind in ("sqlite", "postgres"):
        x = r.get(kind)
        if not x:
            continue
        for h in ("empty", "full"):
            y = x[h]
            c, pg, b = y["claim"], y["page"], y["byid"]
            bad = [f" ({w['non2xx']:,} non-2xx)" if w.get("non2xx") else "" for w in (pg, b)]
            out.append(f"| {kind} | {h} | {f0(y['runs'])} | {f0(c['claims_per_s'])} ({f0(c['expected'] / c['window_s'])}) | "
                       f"{f0(c['lateness_ms']['p50'])} / {f0(c['lateness_ms']['p99'])} | {f0(c['pruned_runs'])} | "
                       f"{f0(pg['rps'])}{bad[0]} | {f2(pg['p50_ms'])} / {f2(pg['p99_ms'])} | {f0(b['rps'])}{bad[1]} | "
                       f"{f2(b['p50_ms'])} / {f2(b['p99_ms'])} |")
    out.append("")
    out.append("| database | seed s | runs size MiB | runs page p99 full ÷ empty | req/s | run by id p99 | req/s | claims/s | claim p99 |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for kind in ("sqlite", "postgres"):
        x = r.get(kind)
        if not x:
            continue
        q = x["ratios"]
        out.append(f"| {kind} | {f0(x['seed_s'])} | {f0(x['db_mib'])} | {q['page_p99']:.2f} | {q['page_rps']:.2f} | "
                   f"{q['byid_p99']:.2f} | {q['byid_rps']:.2f} | {q['claims_per_s']:.2f} | {q['claim_p99']:.2f} |")
    out.append("")


def mib(x):
    return "–" if x is None else f"{x / 1048576:,.1f}"


def section_retention(out):
    out.append("## Bounded run history: 500 jobs every second, `keep_succeeded: 20`\n")
    rows = [(k, load(f"retention-{k}")) for k in ("sqlite", "postgres")]
    if not any(r for _, r in rows):
        out.append("*not run yet* (`python3 bench/retention.py`)\n")
        return
    out.append("`python3 bench/retention.py` (not part of `bench/run`): 500 enabled jobs on one "
               "`{\"period\": 1}` schedule, command `true`, `overlap: allow`, `keep_succeeded: 20`, "
               "created through the v1 API on a fresh database; the row count of `runs`, the "
               "database's size on disk (SQLite: file + `-wal` + `-shm`; PostgreSQL: "
               "`pg_total_relation_size('runs')`) sampled every 2 s; lateness = `started_at − "
               "scheduled_for` of every scheduled run, read as they come. Bound = 500 × 20 + one "
               "pruning batch (1,000); finished rows leave out the runs claimed ahead for the next slots "
               "or still running (`queued`, `running`: never pruned). \"off\": the same with the pruner off (`--prune-interval-ms "
               "3600000000 --prune-after-runs 0`), for the lateness comparison. The machine is "
               "shared: other engineers' builds ran alongside (see each stamp).\n")
    out.append("| backend | pruner | minutes | rows max (bound) | samples over | finished rows max | samples over | "
               "unfinished max | size at 2 min MiB | size max after 2 min MiB | size at end MiB | runs started | "
               "p50 ms | p99 ms | max ms |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    # "*_recheck": a later, shorter run of the same (its stamp says when and on which load).
    modes = ("on", "off", "on_recheck", "off_recheck")
    runs = [(kind, mode, r[mode]) for kind, r in rows for mode in modes if r and r.get(mode)]
    for kind, mode, x in runs:
        late = x["lateness_after_first_minute"]
        unfinished = [sum(n for st, n in s["by_status"].items() if st in ("queued", "running")) for s in x["samples"]]
        finished = [s["rows"] - u for s, u in zip(x["samples"], unfinished)]
        out.append(f"| {kind} | {mode} | {x['minutes']} | {f0(x['rows_max'])} ({f0(x['bound'])}) | "
                   f"{x['rows_over_bound']} | {f0(max(finished))} | {sum(1 for n in finished if n > x['bound'])} | "
                   f"{f0(max(unfinished))} | {mib(x['bytes_at_2min'])} | {mib(x['bytes_max_after_2min'])} | "
                   f"{mib(x['bytes_end'])} | {f0(x['runs_started'])} | {f0(late['p50'])} | "
                   f"{f0(late['p99'])} | {f0(late['max'])} |")
    out.append("\nLateness over the slots after the first minute. Per minute (rows max, size max MiB, p99 ms):\n")
    for kind, mode, x in runs:
        per = ", ".join(f"{m['minute']}: {f0(m['rows_max'])} / {mib(m['bytes_max'])} / {f0(m['p99'])}"
                        for m in x["lateness_per_minute"])
        out.append(f"- {kind}, pruner {mode} ({stamp(x)}): {per}")
    out.append("")


def write():
    any_row = next((load(n) for n in ("cron", "lateness", "lateness-second", "executor", "idle", "million",
                                      "api", "cluster") if load(n)), None)
    m = (any_row or {}).get("machine_before", {})
    out = ["# cronstack benchmark results", "",
           "Written by `bench/run` (rows stored in bench/results/, this file regenerated from them). "
           "Every row is measured side by side with what it is compared with, in the same run: "
           "absolute figures drift with the machine's load, ratios much less.", "",
           f"Machine: {m.get('nproc', '?')} cores ({m.get('cpu', '?')}), {m.get('ram_gib', '?')} GiB RAM, "
           f"Linux {m.get('kernel', '?')}. Other engineers were compiling on this machine during the runs "
           "where a row's stamp shows compiler processes or a load average above 2.", ""]
    if os.path.exists(NOTES):
        with open(NOTES) as f:
            out.append(f.read().strip())
            out.append("")
    for section in (section_cron, section_lateness, section_executor, section_idle, section_million,
                    section_api, section_cluster, section_pgcron, section_ping, section_history,
                    section_retention):
        section(out)
    with open(os.path.join(BENCH, "RESULTS.md"), "w") as f:
        f.write("\n".join(out).rstrip() + "\n")


if __name__ == "__main__":
    write()
