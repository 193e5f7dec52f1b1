"""The benchmark rows of bench/run (see bench/run for the entry point and options).

Each row measures cronstack and what it is compared with in the same run, stores its figures
in bench/results/<row>.json, and bench/RESULTS.md is rewritten from every stored row.
Standard library only, plus the tools bench/run installs (wrk, psql, the peers).
"""

import datetime as dt
import json
import math
import os
import platform
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import threading
import sys
import time
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
CRONSTACK = os.path.join(TARGET, "release", "cronstack")
SPAWN_RATE = os.path.join(TARGET, "release", "examples", "spawn_rate")
PEERS = os.path.join(TARGET, "peers", "release")
VENV_PY = os.path.join(BENCH, ".venv", "bin", "python")
RESULTS_DIR = os.path.join(BENCH, "results")
WORK = os.environ.get("BENCH_WORK", "/tmp/cronstack-bench")
PG = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
QUICK = os.environ.get("QUICK", "0") not in ("", "0")
CORES = os.cpu_count() or 2
HZ = os.sysconf("SC_CLK_TCK")


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


# ---------------------------------------------------------------------------------------------
# Processes and measurements


def proc_cpu(pid):
    """User + system CPU seconds of a live process (itself, not its children)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / HZ
    except (OSError, IndexError):
        return float("nan")


def proc_tree(pid):
    """pid and its live descendants, leaving out the jobs' `sh` children."""
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    head, rest = f.read().rsplit(")", 1)
                comm = head.split("(", 1)[1]
                parent[int(d)] = (int(rest.split()[1]), comm)
            except (OSError, IndexError, ValueError):
                pass
    tree, grew = {pid}, True
    while grew:
        grew = False
        for p, (pp, comm) in parent.items():
            if pp in tree and p not in tree and comm != "sh":
                tree.add(p)
                grew = True
    return sorted(tree)


def tree_cpu(pids):
    """CPU seconds of each pid of a process tree ({pid: s}: a pid gone since counts its last)."""
    return {p: proc_cpu(p) for p in pids}


def proc_mem(pid):
    """(VmRSS, VmHWM) in MiB."""
    rss = hwm = float("nan")
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) / 1024
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) / 1024
    except OSError:
        pass
    return rss, hwm


def http_get(url, token=None, timeout=2.0):
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read()


def free_port():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def stop(p, sig=signal.SIGTERM, timeout=30):
    if p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def pct(values, q):
    """Nearest-rank percentile of a sorted list."""
    if not values:
        return float("nan")
    k = max(0, min(len(values) - 1, math.ceil(q / 100 * len(values)) - 1))
    return values[k]


def summary(lateness_ms):
    v = sorted(lateness_ms)
    return {
        "n": len(v),
        "p50": pct(v, 50),
        "p99": pct(v, 99),
        "max": v[-1] if v else float("nan"),
        "mean": sum(v) / len(v) if v else float("nan"),
    }


def sleep_until(t):
    d = t - time.time()
    if d > 0:
        time.sleep(d)


# ---------------------------------------------------------------------------------------------
# cronstack: databases, seeding, servers


class Db:
    """A fresh cronstack database: SQLite file or PostgreSQL database; with `template`, a copy
    of that one as it is now (no server may be using it), sharing its secret key."""

    def __init__(self, kind, name, template=None):
        self.kind = kind
        if kind == "sqlite":
            self.path = os.path.join(WORK, f"{name}.db")
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(self.path + suffix):
                    os.remove(self.path + suffix)
            if template:
                src, dst = sqlite3.connect(template.path, timeout=60), sqlite3.connect(self.path)
                try:
                    src.backup(dst)
                finally:
                    src.close()
                    dst.close()
            self.url = f"sqlite://{self.path}"
        else:
            self.dbname = f"cronstack_bench_{name}"
            psql(f"{PG}/postgres", f"DROP DATABASE IF EXISTS {self.dbname} WITH (FORCE)")
            copy = f" TEMPLATE {template.dbname}" if template else ""
            psql(f"{PG}/postgres", f"CREATE DATABASE {self.dbname}{copy}")
            self.url = f"{PG}/{self.dbname}"
            if template:
                self.key_file = template.key_file
                return
            # PostgreSQL servers need the secret env key; every node of this database shares it.
            self.key_file = os.path.join(WORK, f"{name}.key")
            fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(os.urandom(32).hex() + "\n")

    def drop(self):
        if self.kind == "postgres":
            psql(f"{PG}/postgres", f"DROP DATABASE IF EXISTS {self.dbname} WITH (FORCE)")

    def query(self, sql):
        """Rows of a SELECT as lists of strings/ints."""
        if self.kind == "sqlite":
            con = sqlite3.connect(self.path, timeout=60)
            try:
                return [list(r) for r in con.execute(sql).fetchall()]
            finally:
                con.close()
        out = psql(self.url, sql, tuples=True)
        return [line.split("|") for line in out.splitlines() if line]

    def exec(self, sql):
        if self.kind == "sqlite":
            con = sqlite3.connect(self.path, timeout=60)
            try:
                con.executescript(sql)
                con.commit()
            finally:
                con.close()
        else:
            psql(self.url, sql)

    def copy(self, table, columns, rows):
        """Bulk insert (rows: iterable of tuples; None = NULL)."""
        if self.kind == "sqlite":
            con = sqlite3.connect(self.path, timeout=60)
            try:
                marks = ", ".join("?" for _ in columns)
                con.execute("PRAGMA synchronous = OFF")
                con.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)
                con.commit()
            finally:
                con.close()
        else:
            def cell(v):
                if v is None:
                    return ""
                s = str(v)
                return '"' + s.replace('"', '""') + '"' if any(c in s for c in ',"\n') else s

            data = "".join(",".join(cell(v) for v in r) + "\n" for r in rows)
            subprocess.run(
                ["psql", "-q", "-v", "ON_ERROR_STOP=1", self.url, "-c",
                 f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)"],
                input=data.encode(), check=True, stdout=subprocess.DEVNULL,
            )
            psql(self.url, f"ANALYZE {table}")


def psql(url, sql, tuples=False):
    args = ["psql", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", sql]
    if tuples:
        args[1:1] = ["-At"]
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def seed(db, schedules, jobs, command="true", overlap="allow"):
    """A user (token returned), one stack running `command`, the given schedules (cron
    expressions, UTC) and jobs: `jobs` is a list of (schedule index, next_run_at ms)."""
    out = subprocess.run(
        [CRONSTACK, "user", "add", "bench", "--database-url", db.url],
        check=True, capture_output=True, text=True,
    ).stdout
    token = out.strip().splitlines()[-1].strip()
    now = int(time.time() * 1000)
    stack_uid = uuid.uuid4().hex
    db.copy("stacks", ["uid", "owner", "name", "command", "env", "created_at", "updated_at"],
            [(stack_uid, 1, "bench", command, "{}", now, now)])
    stack_id = int(db.query(f"SELECT id FROM stacks WHERE uid = '{stack_uid}'")[0][0])
    db.copy("schedules", ["owner", "name", "once", "config", "created_at", "updated_at"],
            [(1, f"s{i}", 0, json.dumps({"cron": expr, "timezone": "UTC"}), now, now)
             for i, expr in enumerate(schedules)])
    ids = [int(r[0]) for r in db.query("SELECT id FROM schedules ORDER BY id")]
    cols = ["uid", "owner", "stack_id", "schedule_id", "name", "enabled", "overlap", "missed",
            "next_run_at", "created_at", "updated_at"]
    batch = []
    for i, (s, next_at) in enumerate(jobs):
        batch.append((uuid.uuid4().hex, 1, stack_id, ids[s], f"job{i}", 1, overlap, "skip", next_at, now, now))
        if len(batch) == 200_000:
            db.copy("jobs", cols, batch)
            batch = []
    if batch:
        db.copy("jobs", cols, batch)
    return token, stack_uid


class Server:
    def __init__(self, db, name, max_runs=256, port=None, extra=()):
        self.db, self.name = db, name
        self.extra = list(extra)
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.logpath = os.path.join(WORK, f"{name}.log")
        self.max_runs = max_runs
        self.p = None

    def start(self):
        self.logf = open(self.logpath, "w")
        self.t_start = time.time()
        self.p = subprocess.Popen(
            [CRONSTACK, "serve", "--listen", f"127.0.0.1:{self.port}", "--database-url", self.db.url,
             "--rate-limit", "4000000000", "--max-concurrent-runs", str(self.max_runs), "--log-cap", "65536",
             *(["--secret-key-file", self.db.key_file] if self.db.kind == "postgres" else []),
             *self.extra],
            stdout=self.logf, stderr=subprocess.STDOUT, env={**os.environ, "RUST_LOG": os.environ.get("CRONSTACK_BENCH_LOG", "info,sqlx=warn,tower_http=warn")},
        )
        return self

    def wait_ready(self, timeout=300):
        """Seconds from process start until /readyz answers 200."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.p.poll() is not None:
                raise RuntimeError(f"{self.name} exited: see {self.logpath}")
            try:
                if http_get(self.base + "/readyz", timeout=timeout)[0] == 200:
                    return time.time() - self.t_start
            except OSError:
                time.sleep(0.01)
        raise RuntimeError(f"{self.name} not ready after {timeout}s")

    def loaded_jobs(self):
        with open(self.logpath) as f:
            m = re.findall(r"jobs=(\d+)\s+schedule loaded|schedule loaded.*?jobs=(\d+)", f.read())
        return int(next(x for x in m[-1] if x)) if m else None

    def stop(self):
        if self.p:
            stop(self.p)
            self.logf.close()


def cronstack_lateness(db, t0, t1):
    rows = db.query(
        f"SELECT scheduled_for, started_at, status, finished_at FROM runs "
        f"WHERE trigger_kind = 'schedule' AND scheduled_for >= {t0} AND scheduled_for < {t1}"
    )
    late = [int(r[1]) - int(r[0]) for r in rows if r[1] not in (None, "")]
    done = sum(1 for r in rows if r[2] == "succeeded")
    return late, len(rows), done


# ---------------------------------------------------------------------------------------------
# Job sets shared by the schedulers


def job_set(mode, n):
    """(cron expressions, per-job (schedule index, offset ms, period ms))."""
    if mode == "minute":
        return [f"{s} * * * * *" for s in range(60)], [(i % 60, (i % 60) * 1000, 60_000) for i in range(n)]
    if mode == "second":
        return ["* * * * * *"], [(0, 0, 1000)] * n
    if mode == "minute0":  # every job at second 0 of every minute (the pgcron row)
        return ["0 * * * * *"], [(0, 0, 60_000)] * n
    raise ValueError(mode)


def slots_in(offset, period, t0, t1):
    first = -((-(t0 - offset)) // period) * period + offset
    return max(0, (t1 - 1 - first) // period + 1) if first < t1 else 0


def expected_slots(jobs, t0, t1):
    return sum(slots_in(o, p, t0, t1) for _, o, p in jobs)


def run_peer(cmd, mode, n, t_measure, warmup, name, stamper=None):
    """Starts a peer that prints "ready", measures slots in [ready + warmup, + t_measure).
    With a stamper, the peer's jobs run `echo <job> <slot_ms> > FIFO` (env BENCH_FIFO) and the
    lateness they observed is measured too. CPU and peak RSS: the peer's process tree (a Celery
    worker is a child of its peer process), the jobs' `sh` processes left out."""
    out = os.path.join(WORK, f"{name}.txt")
    if os.path.exists(out):
        os.remove(out)
    total = warmup + t_measure + 4
    env = {**os.environ, **({"BENCH_FIFO": stamper.path} if stamper else {})}
    p = subprocess.Popen(cmd + [mode, str(n), str(total), out], stdout=subprocess.PIPE, text=True, env=env)
    t_launch = time.time()
    line = p.stdout.readline()
    if "ready" not in line:
        raise RuntimeError(f"{name} did not start: {line!r}")
    ready = time.time()
    at_ready = set(proc_tree(p.pid))
    t0 = (int(ready) + warmup) * 1000
    t1 = t0 + t_measure * 1000
    sleep_until(t0 / 1000)
    # The peer and its lasting children (Celery's worker): in the tree at ready and at t0, so
    # that a child caught between fork and exec is not taken for one.
    pids = sorted(at_ready & set(proc_tree(p.pid)))
    cpu0 = tree_cpu(pids)
    sleep_until(t1 / 1000)
    cpu1 = tree_cpu(pids)
    hwm = sum(m for m in (proc_mem(q)[1] for q in pids) if m == m)
    p.wait(timeout=total + 120)
    late = []
    with open(out) as f:
        for line in f:
            slot, us = line.split()
            if t0 <= int(slot) < t1:
                late.append(int(us) // 1000)  # floored to whole ms, as cronstack stores them
    _, jobs = job_set(mode, n)
    res = {"startup_s": ready - t_launch, "window_s": t_measure, "expected": expected_slots(jobs, t0, t1),
           "fired": len(late), "cpu_s": sum(cpu1[q] - cpu0[q] for q in pids if cpu1[q] == cpu1[q]),
           "processes": len(pids), "peak_rss_mib": hwm, **summary(late)}
    if stamper:
        observed = []
        for fields, stamp_us in stamper.close():
            if len(fields) == 2 and t0 <= int(fields[1]) < t1:
                observed.append((stamp_us - int(fields[1]) * 1000) // 1000)
        res["observed"] = summary(observed)
        res["observed_n"] = len(observed)
    return res


class Stamper:
    """A FIFO the jobs write one line into as their first command (`echo` is a shell builtin:
    no process is started to take the measure), read by bench/peers' fifo_stamp, which stamps
    each line with CLOCK_REALTIME (µs) right after the read that returned it: an upper bound of
    when the job's first command ran. Runs at nice -10 when root, so that its own wake-up waits
    less behind the burst it measures. cronstack's jobs write their run id, the peers'
    "<job> <slot_ms>"."""

    def __init__(self, name):
        self.path = os.path.join(WORK, f"{name}.fifo")
        self.out = os.path.join(WORK, f"{name}.stamps")
        for f in (self.path, self.out):
            if os.path.exists(f):
                os.unlink(f)
        os.mkfifo(self.path)
        nice = ["nice", "-n", "-10"] if os.geteuid() == 0 else []
        self.p = subprocess.Popen(nice + [os.path.join(PEERS, "fifo_stamp"), self.path, self.out],
                                  stdout=subprocess.PIPE, text=True)
        if "ready" not in self.p.stdout.readline():
            raise RuntimeError("fifo_stamp did not start")
        self.lines = None

    def command(self):
        """cronstack's stack command."""
        return f'echo "$CRONSTACK_RUN_ID" > {self.path}'

    def close(self):
        """[(fields of the line, stamp µs)], once (later calls return the same)."""
        if self.lines is None:
            fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            os.write(fd, b"stop\n")
            os.close(fd)
            self.p.wait(timeout=60)
            self.lines = []
            with open(self.out) as f:
                for line in f:
                    *fields, stamp = line.split()
                    self.lines.append((fields, int(stamp)))
            os.unlink(self.path)
        return self.lines

    def kill(self):
        """Ends fifo_stamp if close() did not (a row that failed)."""
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        if os.path.exists(self.path):
            os.unlink(self.path)

    def stamps(self):
        """{run id: stamp µs} of cronstack's lines (the first stamp of an id)."""
        out = {}
        for fields, stamp in self.close():
            if len(fields) == 1 and fields[0].isdigit():
                out.setdefault(int(fields[0]), stamp)
        return out


def run_cronstack(mode, n, t_measure, warmup, name, db_kind="sqlite", nodes=1, max_runs=2048, extra=(),
                  clock=None):
    command = clock.command() if clock else "true"
    db = Db(db_kind, name)
    exprs, jobs = job_set(mode, n)
    start_at = int(time.time() * 1000) + 1000  # before the window: every window slot is due
    token, _ = seed(db, exprs, [(s, next_slot(o, p, start_at)) for s, o, p in jobs], command=command)
    servers = [Server(db, f"{name}-{i}", max_runs=max_runs, extra=extra).start() for i in range(nodes)]
    t_launch = time.time()
    for s in servers:
        s.wait_ready()
    ready = time.time()
    t0 = (int(ready) + warmup) * 1000
    t1 = t0 + t_measure * 1000
    sleep_until(t0 / 1000)
    cpu0 = sum(proc_cpu(s.p.pid) for s in servers)
    sleep_until(t1 / 1000)
    cpu1 = sum(proc_cpu(s.p.pid) for s in servers)
    hwm = max(proc_mem(s.p.pid)[1] for s in servers)
    time.sleep(3)  # let the window's last runs finish
    for s in servers:
        s.stop()
    late, claimed, done = cronstack_lateness(db, t0, t1)
    # The seconds between the first slot and the window (start-up, nodes joining), apart.
    startup, _, _ = cronstack_lateness(db, start_at, t0)
    observed = None
    if clock:
        rows = db.query(f"SELECT id, scheduled_for FROM runs WHERE trigger_kind = 'schedule' "
                        f"AND scheduled_for >= {t0} AND scheduled_for < {t1} AND status = 'succeeded'")
        stamps = clock.stamps()
        observed = [(stamps[int(r[0])] - int(r[1]) * 1000) // 1000 for r in rows if int(r[0]) in stamps]
    per_node = db.query(
        f"SELECT node_id, COUNT(*) FROM runs WHERE scheduled_for >= {t0} AND scheduled_for < {t1} GROUP BY node_id"
    )
    db.drop()
    return {"startup_s": ready - t_launch, "window_s": t_measure, "expected": expected_slots(jobs, t0, t1),
            "fired": len(late), "claimed": claimed, "succeeded": done, "cpu_s": cpu1 - cpu0,
            "peak_rss_mib": hwm, "per_node": sorted(int(c) for _, c in per_node), **summary(late),
            "startup": summary(startup),
            **({"observed": summary(observed), "observed_n": len(observed)} if observed is not None else {})}


def next_slot(offset, period, after_ms):
    return (after_ms - offset) // period * period + offset + period


TCS = [os.path.join(PEERS, "tcs_peer")]
APS = [VENV_PY, os.path.join(BENCH, "apscheduler_peer.py")]
BURST = [os.path.join(PEERS, "bare_burst")]
GATE = [os.path.join(PEERS, "bare_gate")]
CELERY = [VENV_PY, os.path.join(BENCH, "celery_peer.py")]


def peer_or_failure(f, *args):
    """A peer's figures, or its failure (e.g. no Redis for Celery): the row's other schedulers
    are still measured."""
    try:
        return f(*args)
    except Exception as e:
        log(f"  peer failed: {e!r}")
        return {"ok": False, "error": repr(e)}


def observed_peer(cmd, mode, n, t, warm, name):
    stamper = Stamper(name)
    try:
        return run_peer(cmd, mode, n, t, warm, name, stamper=stamper)
    finally:
        stamper.kill()


def observed_cronstack(mode, n, t, warm, name, **kw):
    stamper = Stamper(name)
    try:
        return run_cronstack(mode, n, t, warm, name, clock=stamper, **kw)
    finally:
        stamper.kill()


# ---------------------------------------------------------------------------------------------
# Rows


def row_cron():
    env = {**os.environ, "CARGO_TARGET_DIR": TARGET}
    if QUICK:
        env["QUICK"] = "1"
    cmd = ["cargo", "bench", "-p", "cronstack-cron", "--bench", "next_fire"]
    log("cron:", " ".join(cmd))
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    res = {"command": " ".join(cmd)}
    for group in ("all", "utc", "zoned"):
        for lib in ("cronstack", "croner", "cron"):
            path = os.path.join(TARGET, "criterion", f"next_fire_{group}", lib, "new")
            with open(os.path.join(path, "estimates.json")) as f:
                ns = json.load(f)["median"]["point_estimate"]
            with open(os.path.join(path, "benchmark.json")) as f:
                elements = json.load(f)["throughput"]["Elements"]
            res[f"{group}/{lib}"] = elements / (ns / 1e9)
    return res


def row_lateness_minute():
    n, t, warm = 10_000, (60 if QUICK else 120), 3
    res = {"jobs": n, "window_s": t}
    log(f"lateness 10k/min: cronstack ({t}s window)")
    res["cronstack"] = run_cronstack("minute", n, t, warm, "late-minute")
    log(f"lateness 10k/min: cronstack --no-prespawn ({t}s window)")
    res["cronstack_no_prespawn"] = run_cronstack("minute", n, t, warm, "late-minute-np", extra=["--no-prespawn"])
    log("lateness 10k/min: APScheduler")
    res["apscheduler"] = run_peer(APS, "minute", n, t, warm + 2, "aps-minute")
    log("lateness 10k/min: tokio-cron-scheduler")
    res["tcs"] = run_peer(TCS, "minute", n, t, warm + 2, "tcs-minute")
    log("lateness 10k/min: Celery beat + worker")
    res["celery"] = peer_or_failure(run_peer, CELERY, "minute", n, t, warm + 2, "celery-minute")
    log("lateness: bare spawn burst (the machine's limit)")
    res["bare"] = run_peer(BURST, "minute", n, t, warm, "bare-minute")
    return res


def row_lateness_second():
    n, t, warm = 1000, (30 if QUICK else 60), 3
    res = {"jobs": n, "window_s": t}
    log(f"lateness 1k/s: cronstack ({t}s window)")
    # 1,000 runs share each instant: claim (and spawn) them a second ahead, not 200 ms.
    res["cronstack"] = run_cronstack("second", n, t, warm, "late-second", extra=["--lookahead-ms", "1000"])
    log(f"lateness 1k/s: cronstack --no-prespawn ({t}s window)")
    res["cronstack_no_prespawn"] = run_cronstack("second", n, t, warm, "late-second-np", extra=["--no-prespawn"])
    log("lateness 1k/s: APScheduler")
    res["apscheduler"] = run_peer(APS, "second", n, t, warm + 2, "aps-second")
    log("lateness 1k/s: tokio-cron-scheduler")
    res["tcs"] = run_peer(TCS, "second", n, t, warm + 2, "tcs-second")
    log("lateness 1k/s: Celery beat + worker")
    res["celery"] = peer_or_failure(run_peer, CELERY, "second", n, t, warm + 2, "celery-second")
    log("lateness: bare spawn burst (the machine's limit)")
    res["bare"] = run_peer(BURST, "second", n, t, warm, "bare-second")
    return res


def observed_row(mode, n, t, warm, tag, cronstack_extra):
    """Every scheduler of a lateness row, each job's first command `echo … > FIFO` stamped by
    fifo_stamp (Stamper): when the jobs really ran, after the scheduler's release and the
    wake-up of the slot's processes, the same measure for all."""
    res = {"jobs": n, "window_s": t}
    for key, extra in (("cronstack", cronstack_extra), ("cronstack_no_prespawn", ["--no-prespawn"])):
        log(f"lateness observed by the jobs, {tag}: {key} ({t}s window)")
        res[key] = observed_cronstack(mode, n, t, warm, f"obs-{tag}-{key}", extra=extra)
    for key, cmd, w in (("apscheduler", APS, warm + 2), ("tcs", TCS, warm + 2), ("celery", CELERY, warm + 2),
                        ("bare", BURST, warm), ("bare_gate", GATE, warm)):
        log(f"lateness observed by the jobs, {tag}: {key} ({t}s window)")
        res[key] = peer_or_failure(observed_peer, cmd, mode, n, t, w, f"obs-{tag}-{key}")
    return res


def row_lateness_observed():
    """The 10k/min set, lateness observed by the jobs, every scheduler (see observed_row)."""
    return observed_row("minute", 10_000, (30 if QUICK else 60), 3, "10k-min", [])


def row_lateness_second_observed():
    """The 1k/s set, lateness observed by the jobs, every scheduler (see observed_row)."""
    # cronstack as in lateness-second: 1,000 runs share each instant, claimed a second ahead.
    return observed_row("second", 1000, (20 if QUICK else 60), 3, "1k-s", ["--lookahead-ms", "1000"])


PG_BIN = "/usr/lib/postgresql/15/bin"
PGCRON_PORT = int(os.environ.get("PGCRON_PORT", "5499"))


class PgCronCluster:
    """A throw-away PostgreSQL 15 cluster with pg_cron preloaded, in WORK/pgcron on 127.0.0.1:
    PGCRON_PORT (never the machine's shared cluster). Run as the `postgres` user; stopped and
    removed by close()."""

    def __init__(self, max_jobs, background_workers):
        self.dir = os.path.join(WORK, "pgcron")
        self.data = os.path.join(self.dir, "data")
        self.close()  # a cluster left by an interrupted run
        try:
            self._start(max_jobs, background_workers)
        except BaseException:
            self.close()
            raise

    def _start(self, max_jobs, background_workers):
        os.makedirs(self.dir)
        shutil.chown(self.dir, "postgres", "postgres")
        subprocess.run(["runuser", "-u", "postgres", "--", f"{PG_BIN}/initdb", "-D", self.data, "-A", "trust",
                        "-U", "postgres", "-E", "UTF8", "--no-sync"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        conf = {
            "port": PGCRON_PORT, "listen_addresses": "'127.0.0.1'", "unix_socket_directories": f"'{self.dir}'",
            "shared_preload_libraries": "'pg_cron'", "cron.database_name": "'postgres'",
            "cron.max_running_jobs": max_jobs, "max_connections": max_jobs + 50,
            "cron.use_background_workers": "on" if background_workers else "off",
            "max_worker_processes": max_jobs + 16,
            # libpq mode: the launcher connects over the Unix socket, not TCP.
            "cron.host": f"'{self.dir}'",
            "cron.log_statement": "off",  # pg_cron's default logs every command it starts
            "timezone": "'UTC'",
        }
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.writelines(f"{k} = {v}\n" for k, v in conf.items())
        subprocess.run(["runuser", "-u", "postgres", "--", f"{PG_BIN}/pg_ctl", "-D", self.data, "-l",
                        os.path.join(self.dir, "server.log"), "-w", "start"],
                       check=True, stdout=subprocess.DEVNULL)
        self.url = f"postgres://postgres@127.0.0.1:{PGCRON_PORT}/postgres"
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            self.pid = int(f.readline())

    def sql(self, q, tuples=False):
        return psql(self.url, q, tuples=tuples)

    def cpu(self):
        """CPU seconds of the whole cluster: the postmaster, its reaped children (the job
        backends or workers that ended) and its live ones."""
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            own = sum(int(x) for x in fields[11:15]) / HZ
        except OSError:
            return float("nan")
        return own + sum(proc_cpu(p) for p in proc_tree(self.pid) if p != self.pid)

    def close(self):
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            subprocess.run(["runuser", "-u", "postgres", "--", f"{PG_BIN}/pg_ctl", "-D", self.data, "-m", "fast",
                            "-w", "stop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(self.dir, ignore_errors=True)


def row_pgcron():
    """pg_cron (minute granularity in 1.4) and cronstack on PostgreSQL, 1,000 jobs every minute,
    all due at second 0: lateness of each run over M minutes."""
    n, minutes = 1000, (2 if QUICK else 3)
    bgw = os.environ.get("PGCRON_BGW", "1") not in ("", "0")
    res = {"jobs": n, "minutes": minutes, "background_workers": bgw}
    log(f"pgcron: throw-away cluster on 127.0.0.1:{PGCRON_PORT}, {n} jobs '* * * * *', {minutes} min, "
        f"background workers {'on' if bgw else 'off'}")
    cluster = PgCronCluster(n, bgw)
    try:
        cluster.sql("CREATE EXTENSION pg_cron")
        res["pg_cron_version"] = cluster.sql("SELECT extversion FROM pg_extension WHERE extname = 'pg_cron'",
                                             tuples=True).strip()
        # Each job's first statement stamps when it ran (now(): its transaction's start), as the
        # jobs of the other rows echo into a FIFO.
        cluster.sql("CREATE TABLE bench_stamps (job int, at timestamptz)")
        cluster.sql(f"SELECT cron.schedule('job' || g, '* * * * *', "
                    f"format('INSERT INTO bench_stamps VALUES (%s, now())', g)) FROM generate_series(1, {n}) g")
        # The window: the next `minutes` minute slots at least 5 s away.
        t0 = (int(time.time() + 5) // 60 + 1) * 60_000
        t1 = t0 + minutes * 60_000
        sleep_until(t0 / 1000 - 1)
        cpu0 = cluster.cpu()
        sleep_until(t1 / 1000 - 1)
        cpu1 = cluster.cpu()
        # Until the last slot's runs are over (or 50 s).
        deadline = time.time() + 50
        while time.time() < deadline:
            left = cluster.sql("SELECT count(*) FROM cron.job_run_details WHERE status IN ('starting', 'running')",
                               tuples=True).strip()
            if time.time() > t1 / 1000 and left == "0":
                break
            time.sleep(1)
        cluster.sql("SELECT cron.unschedule(jobid) FROM cron.job")
        # A run's slot is its start's minute (lateness below a minute; pg_cron 1.4 has no
        # seconds field, every run of the row is due at second 0).
        rows = cluster.sql(
            "SELECT (extract(epoch FROM date_trunc('minute', start_time)) * 1000)::bigint, "
            "(extract(epoch FROM start_time) * 1000000)::bigint, status FROM cron.job_run_details "
            "WHERE start_time IS NOT NULL", tuples=True)
        late, done, per_minute = [], 0, {}
        for line in rows.splitlines():
            slot, us, status = line.split("|")
            if t0 <= int(slot) < t1:
                late.append((int(us) - int(slot) * 1000) // 1000)
                per_minute.setdefault(int(slot), []).append(late[-1])
                done += status == "succeeded"
        stamps = cluster.sql("SELECT (extract(epoch FROM at) * 1000000)::bigint FROM bench_stamps", tuples=True)
        observed = []
        for line in stamps.splitlines():
            us = int(line)
            slot = us // 60_000_000 * 60_000
            if t0 <= slot < t1:
                observed.append((us - slot * 1000) // 1000)
        res["pg_cron"] = {"window_s": minutes * 60, "expected": n * minutes, "fired": len(late), "succeeded": done,
                          "cpu_s": cpu1 - cpu0, **summary(late), "observed": summary(observed),
                          "observed_n": len(observed),
                          "per_minute": [summary(v) for _, v in sorted(per_minute.items())]}
    except Exception as e:  # cronstack's half still runs
        log(f"  pg_cron failed: {e!r}")
        res["pg_cron"] = {"ok": False, "error": repr(e)}
    finally:
        cluster.close()
    log(f"pgcron: cronstack on PostgreSQL ({PG}), {n} jobs '0 * * * * *', {minutes} min")
    # (a database name: no hyphen)
    res["cronstack"] = peer_or_failure(lambda: observed_cronstack(
        "minute0", n, minutes * 60, 3, "pgcron_cronstack", db_kind="postgres", extra=["--lookahead-ms", "1000"]))
    return res


def row_executor():
    runs, in_flight, rounds = (1000, 16, 3) if QUICK else (3000, 16, 5)
    cmd = [SPAWN_RATE, str(runs), str(in_flight), str(rounds), str(CORES * 4)]
    log("executor:", " ".join(cmd))
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    bare = float(re.search(r"bare sh -c true :\s+(\d+) runs/s", out).group(1))
    ex = float(re.search(r"cronstack-exec  :\s+(\d+) runs/s", out).group(1))
    res = {"command": " ".join(cmd).replace(TARGET, "$CARGO_TARGET_DIR"), "bare": bare, "exec": ex,
           "ratio": ex / bare, "output": out}
    # End to end: more every-second jobs than the machine can spawn; completed runs per second.
    n, t = int(min(4000, max(500, 2 * bare))), (10 if QUICK else 20)
    log(f"executor end to end: {n} every-second jobs, {t}s")
    e2e = run_cronstack("second", n, t, 3, "e2e", max_runs=2048)
    e2e["runs_per_s"] = e2e["succeeded"] / t
    res["e2e"] = e2e
    res["e2e_ratio"] = e2e["runs_per_s"] / bare
    return res


def row_idle():
    n, t = 10_000, (60 if QUICK else 300)
    log(f"idle: {n} yearly jobs, {t}s, the three side by side")
    db = Db("sqlite", "idle")
    year = dt.datetime.now(dt.timezone.utc).year + 1
    jan1 = int(dt.datetime(year, 1, 1, tzinfo=dt.timezone.utc).timestamp() * 1000)
    seed(db, ["0 0 0 1 1 *"], [(0, jan1)] * n)
    server = Server(db, "idle").start()
    procs = {}
    for name, cmd in (("apscheduler", APS), ("tcs", TCS)):
        procs[name] = subprocess.Popen(cmd + ["idle", str(n), str(t + 120)], stdout=subprocess.PIPE, text=True)
    starts = {}
    server.wait_ready()
    starts["cronstack"] = server.p
    for name, p in procs.items():
        assert "ready" in p.stdout.readline()
        starts[name] = p
    time.sleep(2)
    cpu0 = {k: proc_cpu(p.pid) for k, p in starts.items()}
    time.sleep(t)
    res = {"jobs": n, "window_s": t}
    for k, p in starts.items():
        rss, hwm = proc_mem(p.pid)
        res[k] = {"cpu_s": proc_cpu(p.pid) - cpu0[k], "startup_cpu_s": cpu0[k], "rss_mib": rss, "peak_rss_mib": hwm}
    server.stop()
    for p in procs.values():
        stop(p, signal.SIGKILL)
    return res


def million(kind):
    n = 100_000 if QUICK else 1_000_000
    log(f"1M jobs on {kind}: seeding {n}")
    db = Db(kind, f"million_{kind}")
    year = dt.datetime.now(dt.timezone.utc).year + 1
    exprs = [f"0 {i % 60} {i // 60 % 24} 1 1 *" for i in range(1000)]
    base = int(dt.datetime(year, 1, 1, tzinfo=dt.timezone.utc).timestamp() * 1000)
    t = time.time()
    token, _ = seed(db, exprs, ((i % 1000, base + ((i % 1000) // 60 % 24 * 3600 + (i % 1000) % 60 * 60) * 1000)
                                for i in range(n)))
    seed_s = time.time() - t
    first = Server(db, f"million-{kind}-first").start()
    first_ready = first.wait_ready()
    first.stop()
    server = Server(db, f"million-{kind}").start()
    ready = server.wait_ready()
    rss, _ = proc_mem(server.p.pid)
    loaded = server.loaded_jobs()
    lua = os.path.join(WORK, "byid.lua")
    with open(lua, "w") as f:
        f.write(f"""
math.randomseed(42)
request = function()
  return wrk.format("GET", "/api/v1/jobs/byid/" .. math.random(1, {n}), {{["Authorization"] = "Bearer {token}"}})
end
""")
    w = wrk(server.base + "/", lua=lua, duration=(5 if QUICK else 10))
    _, hwm = proc_mem(server.p.pid)
    server.stop()
    db.drop()
    return {"jobs": n, "loaded": loaded, "seed_s": seed_s, "first_start_ready_s": first_ready,
            "restart_ready_s": ready, "rss_ready_mib": rss, "peak_rss_mib": hwm, "byid": w}


def row_million():
    return {"sqlite": million("sqlite"), "postgres": million("postgres")}


def row_million_sqlite():
    return {"sqlite": million("sqlite")}


def wrk(url, lua=None, duration=10, conns=32, token=None):
    cmd = ["wrk", f"-t{min(2, conns)}", f"-c{conns}", f"-d{duration}s", "--latency"]
    if token:
        cmd += ["-H", f"Authorization: Bearer {token}"]
    if lua:
        cmd += ["-s", lua]
    cmd.append(url)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout

    def ms(s):
        v, unit = re.match(r"([\d.]+)(us|ms|s)", s).groups()
        return float(v) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = ms(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = ms(re.search(r"\s99%\s+(\S+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99, "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": errors.group(1) if errors else ""}


def api(kind):
    n = 1000
    dur = 5 if QUICK else 10
    log(f"API on {kind}: {n} jobs")
    db = Db(kind, f"api_{kind}")
    year = dt.datetime.now(dt.timezone.utc).year + 1
    jan1 = int(dt.datetime(year, 1, 1, tzinfo=dt.timezone.utc).timestamp() * 1000)
    token, stack_uid = seed(db, ["0 0 0 1 1 *"], [(0, jan1)] * n)
    server = Server(db, f"api-{kind}").start()
    server.wait_ready()
    job_id = n // 2
    job_uid = db.query(f"SELECT uid FROM jobs WHERE id = {job_id}")[0][0]
    paths = {
        "v1 job list": "/api/v1/jobs",
        "v1 job by id": f"/api/v1/jobs/byid/{job_id}",
        "v3 stack jobs": f"/api/3/stacks/{stack_uid}/jobs",
        "v3 job": f"/api/3/stacks/{stack_uid}/jobs/{job_uid}",
    }
    bodies = {}
    for label, path in paths.items():
        status, body = http_get(server.base + path, token)
        assert status == 200, (label, status)
        f = os.path.join(WORK, f"body-{kind}-{len(bodies)}.json")
        with open(f, "wb") as fh:
            fh.write(body)
        bodies[label] = (path, f, len(body))
    res = {"jobs": n, "duration_s": dur, "endpoints": {}}
    port = free_port()
    bare = subprocess.Popen([os.path.join(PEERS, "bare_axum"), f"127.0.0.1:{port}"]
                            + [f"{p}={f}" for p, f, _ in bodies.values()], stdout=subprocess.PIPE, text=True)
    bare.stdout.readline()
    # Each endpoint on cronstack then at once on the bare handler (both servers up, one
    # loaded at a time): the ratio compares the same minute of a machine whose speed drifts.
    for label, (path, _, size) in bodies.items():
        log(f"  wrk cronstack, then bare axum: {label}")
        c = wrk(server.base + path, duration=dur, token=token)
        b = wrk(f"http://127.0.0.1:{port}{path}", duration=dur, token=token)
        res["endpoints"][label] = {"path": path, "bytes": size, "cronstack": c, "bare": b,
                                   "ratio": c["rps"] / b["rps"]}
    server.stop()
    stop(bare)
    db.drop()
    return res


def row_api():
    return {"sqlite": api("sqlite"), "postgres": api("postgres")}


def row_cluster():
    # 1,000 claims due every second (the end-to-end limit of one node on this machine is
    # about that, see the executor row): does the cluster keep up, and how late.
    # Then 1,000 a second again on a loaded machine: two busy-loop processes (ordinary
    # priority) beside the nodes for the whole run, so the nodes, PostgreSQL and the jobs get
    # what is left of the 2 cores.
    # Last, 3,000 a second on 3 nodes: more process starts than the machine has (about
    # 2,700/s bare, see the executor row), so it measures claiming and the split under
    # overload. Last because the case after it was late for a minute with the machine idle
    # again (1 node, 1,000/s: 340–625 ms p99 right after it, 0 ms before it).
    n, t = 1000, (20 if QUICK else 30)
    res = {"jobs": n, "window_s": t, "hogs": HOGS}
    for jobs, nodes, loaded in ((n, 1, False), (n, 3, False), (n, 1, True), (n, 3, True), (3 * n, 3, False)):
        key = (f"nodes{nodes}" if jobs == n else f"nodes{nodes}_{jobs}") + ("_loaded" if loaded else "")
        log(f"cluster: {nodes} node(s), {jobs} every-second jobs on PostgreSQL, {t}s" + (", loaded" if loaded else ""))
        hogs = [subprocess.Popen(["sh", "-c", "while :; do :; done"]) for _ in range(HOGS if loaded else 0)]
        try:
            r = run_cronstack("second", jobs, t, 3, f"cluster{nodes}_{jobs}", db_kind="postgres", nodes=nodes,
                              extra=["--lookahead-ms", "1000"])
        finally:
            for h in hogs:
                stop(h)
        r["claims_per_s"] = r["claimed"] / t
        r["jobs"] = jobs
        res[key] = r
    return res


# Busy-loop processes beside the nodes in the cluster row's loaded runs.
HOGS = 2


def http_post_json(url, body, token):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    req.add_header("Authorization", f"Bearer {token}")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def ping(kind):
    """Heartbeat pings: POST /ping/<uuid> with a small body, spread over 100 monitors. Each
    ping is a write (the ping row, the monitor's state) in one transaction."""
    n = 100
    dur = 5 if QUICK else 10
    log(f"pings on {kind}: {n} monitors")
    db = Db(kind, f"ping_{kind}")
    out = subprocess.run([CRONSTACK, "user", "add", "bench", "--database-url", db.url],
                         check=True, capture_output=True, text=True).stdout
    token = out.strip().splitlines()[-1].strip()
    server = Server(db, f"ping-{kind}", extra=["--ping-rate-limit", "4000000000"]).start()
    server.wait_ready()
    uuids = []
    for i in range(n):
        m = http_post_json(server.base + "/api/v1/monitors",
                           {"name": f"m{i}", "schedule": {"period": 3600}, "grace_s": 3600}, token)
        uuids.append(m["ping_url"].rsplit("/", 1)[1])
    lua = os.path.join(WORK, "ping.lua")
    with open(lua, "w") as f:
        f.write("local uuids = {" + ", ".join(f'"{u}"' for u in uuids) + "}\n")
        f.write("""math.randomseed(42)
request = function()
  return wrk.format("POST", "/ping/" .. uuids[math.random(1, #uuids)], {["Content-Type"] = "text/plain"}, "backup done: 42 files")
end
""")
    res = {"monitors": n, "duration_s": dur}
    for conns in (1, 4, 32):
        log(f"  wrk -c{conns}")
        before = ping_buckets(server)
        res[f"c{conns}"] = wrk(server.base + "/", lua=lua, duration=dur, conns=conns)
        after = ping_buckets(server)
        delta = {le: after[le] - before.get(le, 0) for le in after}
        total = delta.get(float("inf"), 0)
        # As the server measured them (the /metrics histogram): the client's figures include
        # its own waits for a CPU on a loaded machine.
        bounds = sorted(delta)
        res[f"c{conns}"]["server"] = {
            "pings": total,
            "within_5ms": delta.get(0.005, 0) / total if total else float("nan"),
            "p99_le_ms": next((le * 1000 for le in bounds if delta[le] >= 0.99 * total), float("nan")),
        }
    res["pings_stored"] = int(db.query("SELECT COUNT(*) FROM monitor_pings")[0][0])
    server.stop()
    db.drop()
    return res


def ping_buckets(server):
    """The /ping/{uuid} request-duration histogram: {upper bound in s: cumulative count}."""
    _, body = http_get(server.base + "/metrics")
    out = {}
    for m in re.finditer(r'cronstack_http_request_duration_seconds_bucket\{route="/ping/\{uuid\}",le="([^"]+)"\} (\d+)',
                         body.decode()):
        out[float("inf") if m.group(1) == "+Inf" else float(m.group(1))] = int(m.group(2))
    return out


def row_ping():
    return {"monitors": 100, "duration_s": 5 if QUICK else 10, "sqlite": ping("sqlite"), "postgres": ping("postgres")}


# The `history` row: a long run history (10,000,000 runs over 1,000 jobs) with retention on,
# against the same jobs with an empty history.
HISTORY_JOBS = 1000
# One in FAILED_EVERY seeded runs failed (the others succeeded).
FAILED_EVERY = 20


def metric(server, name, label=""):
    """The sum of a counter's series on /metrics whose labels include `label` (0 when none)."""
    _, body = http_get(server.base + "/metrics")
    return sum(float(v) for labels, v in re.findall(rf"^{re.escape(name)}(?:\{{(.*?)\}})? (\S+)$", body.decode(), re.M)
               if label in labels)


def seed_history(db, per_job, t_end):
    """`per_job` finished runs for every job, one a second before `t_end` (ms), inserted in
    time order across jobs as a scheduler would have (ids grow with time): one in
    FAILED_EVERY failed, the others succeeded, no logs."""
    lo, hi, n = (int(v) for v in db.query("SELECT MIN(id), MAX(id), COUNT(*) FROM jobs")[0])
    assert hi - lo + 1 == n, "job ids not contiguous"
    total = per_job * n
    # g = 0 … total−1: job lo + g % n, slot k = per_job − g / n seconds before t_end.
    cols = ("job_id, owner, trigger_kind, scheduled_for, due_at, status, node_id, started_at, "
            "finished_at, exit_code, created_at")
    if db.kind == "postgres":
        k, job = f"({per_job} - g / {n})", f"({lo} + g % {n})"
        src = f"generate_series(0, {total - 1}) AS g"
    else:
        k, job = f"({per_job} - g / {n})", f"({lo} + g % {n})"
        src = "g"
    slot = f"({t_end} - {k} * 1000)"
    failed = f"(g % {n * FAILED_EVERY} < {n})"  # every FAILED_EVERY-th slot of each job
    select = (f"SELECT {job}, 1, 'schedule', {slot}, {slot}, "
              f"CASE WHEN {failed} THEN 'failed' ELSE 'succeeded' END, 'seed', {slot} + 3, {slot} + 9, "
              f"CASE WHEN {failed} THEN 1 ELSE 0 END, {slot} - 500 FROM {src}")
    if db.kind == "postgres":
        # The secondary indexes are built after the rows (the same definitions, read back),
        # several times faster than maintained row by row.
        defs = [r[0] for r in db.query("SELECT indexdef FROM pg_indexes WHERE tablename = 'runs' "
                                       "AND indexname <> 'runs_pkey'")]
        names = [r[0] for r in db.query("SELECT indexname FROM pg_indexes WHERE tablename = 'runs' "
                                        "AND indexname <> 'runs_pkey'")]
        psql(db.url, "BEGIN; " + "".join(f"DROP INDEX {i}; " for i in names)
             + f"INSERT INTO runs ({cols}) {select}; SET LOCAL maintenance_work_mem = '512MB'; "
             + "".join(f"{d}; " for d in defs) + "COMMIT")
        psql(db.url, "VACUUM ANALYZE runs")  # what autovacuum would have done by then
    else:
        con = sqlite3.connect(db.path, timeout=60)
        try:
            con.execute("PRAGMA synchronous = OFF")
            con.execute("PRAGMA cache_size = -1000000")
            con.execute(f"INSERT INTO runs ({cols}) WITH RECURSIVE g(g) AS "
                        f"(SELECT 0 UNION ALL SELECT g + 1 FROM g WHERE g < {total - 1}) {select}")
            con.commit()
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            con.close()
    return total


def history_claim(db, kind, tag, window, keep):
    """One history's claim figures: every job enabled and due every second over `window` s."""
    now = int(time.time() * 1000)
    db.exec(f"UPDATE jobs SET enabled = 1, next_run_at = {now + 2000}")
    server = Server(db, f"history-{kind}-{tag}-claim", max_runs=2048,
                    extra=["--lookahead-ms", "1000", *history_flags(keep)]).start()
    ready_s = server.wait_ready()
    t0 = (int(time.time()) + 3) * 1000
    t1 = t0 + window * 1000
    sleep_until(t0 / 1000)
    cpu0 = proc_cpu(server.p.pid)
    sleep_until(t1 / 1000)
    cpu1 = proc_cpu(server.p.pid)
    pruned = metric(server, "cronstack_pruned_rows_total", 'table="runs"')
    time.sleep(3)  # the window's last runs finish
    server.stop()
    db.exec("UPDATE jobs SET enabled = 0, next_run_at = NULL")
    late, claimed, done = cronstack_lateness(db, t0, t1)
    return {"window_s": window, "expected": HISTORY_JOBS * window, "claimed": claimed,
            "claims_per_s": claimed / window, "succeeded": done, "cpu_s": cpu1 - cpu0,
            "startup_s": ready_s, "pruned_runs": pruned, "lateness_ms": summary(late)}


def history_flags(keep):
    return ["--keep-succeeded", str(keep[0]), "--keep-failed", str(keep[1])]


def history_reads(dbs, kind, token, rounds, dur, keep):
    """Both histories' reads, interleaved: a server on each (the jobs disabled), then `rounds`
    rounds of wrk on one job's v1 runs page and on run by id, each round reading both histories
    (which one first alternates). Run one after the other, minutes apart, the empty history's
    figures (the ratio's denominator) moved by 20-40% from run to run; interleaved, both sides
    see the same machine. Per history: req/s over all rounds, p50/p99 the median round's."""
    servers = {tag: Server(db, f"history-{kind}-{tag}-read", extra=history_flags(keep)).start()
               for tag, db in dbs.items()}
    targets = {}
    for tag, server in servers.items():
        server.wait_ready()
        db = dbs[tag]
        lo, hi, count = (int(v) for v in db.query("SELECT MIN(id), MAX(id), COUNT(*) FROM runs")[0])
        job_id = int(db.query("SELECT MIN(id) FROM jobs")[0][0]) + HISTORY_JOBS // 2
        page = f"/api/v1/jobs/byid/{job_id}/runs"
        status, body = http_get(server.base + page, token, timeout=30)
        assert status == 200, (page, status)
        lua = os.path.join(WORK, f"history-{kind}-{tag}.lua")
        with open(lua, "w") as f:
            f.write(f"""
math.randomseed(42)
request = function()
  return wrk.format("GET", "/api/v1/runs/" .. math.random({lo}, {hi}), {{["Authorization"] = "Bearer {token}"}})
end
""")
        targets[tag] = {"runs": count, "page_count": json.loads(body).get("count"), "page": page, "lua": lua,
                        "ids": [lo, hi]}
    log(f"  reads, {rounds} interleaved rounds of {dur}s: " +
        ", ".join(f"{tag} {t['runs']} runs" for tag, t in targets.items()))
    samples = {(tag, what): [] for tag in servers for what in ("page", "byid")}
    for i in range(rounds):
        for tag in (list(servers) if i % 2 == 0 else list(servers)[::-1]):
            base, t = servers[tag].base, targets[tag]
            samples[tag, "page"].append(wrk(base + t["page"], duration=dur, token=token))
            samples[tag, "byid"].append(wrk(base + "/", lua=t["lua"], duration=dur))
    res = {}
    for tag, server in servers.items():
        t = targets[tag]
        res[tag] = {"runs": t["runs"], "page_count": t["page_count"], "rounds": rounds, "round_s": dur,
                    "pruned_runs_read": metric(server, "cronstack_pruned_rows_total", 'table="runs"'),
                    "peak_rss_mib": proc_mem(server.p.pid)[1]}
        for what in ("page", "byid"):
            got = samples[tag, what]
            res[tag][what] = {"rps": statistics.mean(w["rps"] for w in got),
                              "p50_ms": statistics.median(w["p50_ms"] for w in got),
                              "p99_ms": statistics.median(w["p99_ms"] for w in got),
                              "non2xx": sum(w["non2xx"] for w in got), "rounds": got}
        res[tag]["page"]["path"] = t["page"]
        res[tag]["byid"]["ids"] = t["ids"]
        server.stop()
    return res


def history(kind):
    per_job = 1000 if QUICK else 10_000
    window = 10 if QUICK else 20
    rounds, dur = (2, 2) if QUICK else (4, 3)
    log(f"history on {kind}: {HISTORY_JOBS} every-second jobs, empty then {per_job * HISTORY_JOBS} runs")
    db = Db(kind, f"history_{kind}")
    start = int(time.time() * 1000)
    token, _ = seed(db, ["* * * * * *"], [(0, start)] * HISTORY_JOBS)
    db.exec("UPDATE jobs SET enabled = 0, next_run_at = NULL")
    # Each job keeps as many runs as it was seeded with: the pruner removes as many as the
    # jobs add (steady state), and with the empty history finds nothing to remove.
    failed = per_job // FAILED_EVERY
    keep = (per_job - failed, failed)
    res = {"jobs": HISTORY_JOBS, "runs_per_job": per_job, "keep_succeeded": keep[0], "keep_failed": keep[1]}
    empty_claim = history_claim(db, kind, "empty", window, keep)
    # The empty history stays readable beside the full one: a copy, read in the same rounds.
    empty = Db(kind, f"history_{kind}_empty", template=db)
    log(f"  seeding {per_job * HISTORY_JOBS} runs")
    t = time.time()
    # The seeded runs end before the empty phase's runs (one slot per job and second).
    seed_history(db, per_job, start - 1000)
    res["seed_s"] = time.time() - t
    if kind == "sqlite":
        res["db_mib"] = os.path.getsize(db.path) / 2**20
    else:
        res["db_mib"] = int(db.query("SELECT pg_total_relation_size('runs')")[0][0]) / 2**20
    log(f"  seeded in {res['seed_s']:.0f}s")
    full_claim = history_claim(db, kind, "full", window, keep)
    reads = history_reads({"empty": empty, "full": db}, kind, token, rounds, dur, keep)
    res["empty"] = {**reads["empty"], "claim": empty_claim}
    res["full"] = {**reads["full"], "claim": full_claim}
    e, f = res["empty"], res["full"]
    res["ratios"] = {
        "page_p99": f["page"]["p99_ms"] / e["page"]["p99_ms"],
        "page_rps": f["page"]["rps"] / e["page"]["rps"],
        "byid_p99": f["byid"]["p99_ms"] / e["byid"]["p99_ms"],
        "byid_rps": f["byid"]["rps"] / e["byid"]["rps"],
        "claims_per_s": f["claim"]["claims_per_s"] / e["claim"]["claims_per_s"],
        "claim_p99": f["claim"]["lateness_ms"]["p99"] / max(1, e["claim"]["lateness_ms"]["p99"]),
    }
    empty.drop()
    db.drop()
    return res


def row_history():
    return {"sqlite": history("sqlite"), "postgres": history("postgres")}


ROWS = {
    "cron": row_cron,
    "lateness": row_lateness_minute,
    "lateness-second": row_lateness_second,
    "lateness-observed": row_lateness_observed,
    "lateness-second-observed": row_lateness_second_observed,
    "pgcron": row_pgcron,
    "executor": row_executor,
    "idle": row_idle,
    "million": row_million,
    "million-sqlite": row_million_sqlite,
    "api": row_api,
    "cluster": row_cluster,
    "ping": row_ping,
    "history": row_history,
}
DEFAULT = ["cron", "lateness", "lateness-observed", "lateness-second", "lateness-second-observed", "executor", "idle",
           "million", "api", "cluster", "pgcron", "ping", "history"]


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) / 1024 / 1024
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    busy = subprocess.run(["sh", "-c", "ps -eo comm | grep -cE '^(rustc|cc1|cc1plus|ld|cargo)$'"],
                          capture_output=True, text=True).stdout.strip()
    return {"nproc": CORES, "cpu": model, "ram_gib": round(mem, 1), "kernel": platform.release(),
            "loadavg": load, "compilers_running": busy}


def main():
    os.makedirs(WORK, exist_ok=True)
    os.makedirs(RESULTS_DIR, exist_ok=True)
    rows = sys.argv[1:] or DEFAULT
    for r in rows:
        if r not in ROWS:
            sys.exit(f"unknown row {r!r}; rows: {', '.join(ROWS)}")
    for r in rows:
        before = machine()
        t = time.time()
        try:
            res = ROWS[r]()
            res["ok"] = True
        except Exception as e:  # a failed row is reported, the others still run
            log(f"row {r} failed: {e!r}")
            res = {"ok": False, "error": repr(e)}
        res["date"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        res["seconds"] = round(time.time() - t)
        res["quick"] = QUICK
        res["machine_before"] = before
        res["machine_after"] = machine()
        name = "million" if r == "million-sqlite" else r
        if r == "million-sqlite":
            old = load_row("million") or {}
            res = {**old, **res}
        with open(os.path.join(RESULTS_DIR, f"{name}.json"), "w") as f:
            json.dump(res, f, indent=1)
        log(f"row {r} done in {res['seconds']}s")
        import report

        report.write()


def load_row(name):
    try:
        with open(os.path.join(RESULTS_DIR, f"{name}.json")) as f:
            return json.load(f)
    except OSError:
        return None


if __name__ == "__main__":
    sys.path.insert(0, BENCH)
    main()
