"""Celery 5 (beat + one worker, Redis broker on loopback) running the benchmark's job sets, for
bench/run.

python celery_peer.py minute|second JOBS SECONDS [OUT]
  minute: job i fires once a minute at second i % 60
  second: every job fires every second

One beat entry per job. Celery's `crontab` has no seconds field, so each entry's schedule is
`SlotSchedule(offset, period)` (below): `is_due` says whether a slot passed since the entry last
ran and how many seconds remain to its next slot, so beat sleeps until exactly then. Beat runs
in this process (`celery.beat.Service` in a thread) with `SlotScheduler`, the stock in-memory
`celery.beat.Scheduler` with two changes: it skips the comparison of the whole schedule that the
stock scheduler makes at every tick (O(entries) for every task sent: with 10,000 entries it
alone would cost far more than the minute; the schedule never changes during the run), and it
sends the slot that was due with the task. `beat_max_loop_interval` 1 s (an upper bound only:
beat sleeps until the next due slot).

The worker is a child process, `celery worker --pool threads --concurrency 64` (env
CELERY_POOL, CELERY_CONCURRENCY), `--prefetch-multiplier 4`, without heartbeat, gossip and
mingle, `task_ignore_result`, no result backend, acks on receipt (the default). Threads: the
task only starts a process and waits for it, so a pool of threads in one process is what keeps
up best on 2 cores (prefork adds a pipe hop and a process per slot of concurrency; gevent
cannot wait on a child without its own hub in the way). Each task starts
`sh -c true` with subprocess.Popen (which returns once the child has exec'd) and records the
child-start lateness (time right after Popen returned − the slot beat sent); with BENCH_FIFO set
the child is `sh -c 'echo <job> <slot_ms> > FIFO'` instead (the observed rows).

Broker: redis://127.0.0.1:6379/<CELERY_REDIS_DB, default 13>, flushed before and after the run.
Prints "ready" once the worker is ready and beat runs, runs SECONDS, then writes
"slot_ms lateness_us" lines to OUT.
"""

import datetime as dt
import glob
import os
import signal
import subprocess
import sys
import threading
import time

from celery import Celery, signals
from celery.beat import Scheduler, Service
from celery.schedules import BaseSchedule, schedstate

REDIS_DB = int(os.environ.get("CELERY_REDIS_DB", "13"))
BROKER = f"redis://127.0.0.1:6379/{REDIS_DB}"
QUEUE = "cronstack-bench"

app = Celery("celery_peer", broker=BROKER)
app.conf.update(
    task_ignore_result=True,
    result_backend=None,
    task_default_queue=QUEUE,
    worker_prefetch_multiplier=4,
    worker_send_task_events=False,
    task_send_sent_event=False,
    worker_disable_rate_limits=True,
    broker_connection_retry_on_startup=True,
    beat_max_loop_interval=1,
    enable_utc=True,
    timezone="UTC",
    worker_hijack_root_logger=False,
)

FIFO = os.environ.get("BENCH_FIFO")
RECORDS = os.environ.get("CELERY_RECORDS")
records = []


@app.task(name="bench.run_job", ignore_result=True)
def run_job(job, slot_ms):
    script = f"echo {job} {slot_ms} > {FIFO}" if FIFO else "true"
    child = subprocess.Popen(["sh", "-c", script])
    started = time.time_ns() // 1000
    records.append((slot_ms, started - slot_ms * 1000))
    child.wait()


def _dump(**_):
    if RECORDS:
        with open(f"{RECORDS}.{os.getpid()}", "w") as f:
            f.writelines(f"{slot} {late}\n" for slot, late in list(records))


signals.worker_shutdown.connect(_dump, weak=False)  # the threads pool: tasks ran in this process
signals.worker_process_shutdown.connect(_dump, weak=False)  # prefork children


@signals.worker_ready.connect(weak=False)
def _ready(**_):
    path = os.environ.get("CELERY_READY_FILE")
    if path:
        open(path, "w").close()


class SlotSchedule(BaseSchedule):
    """Due at offset_ms + k × period_ms (epoch ms, UTC): is_due says whether a slot passed since
    the entry last ran, and the seconds to its next slot. `due_slot` keeps the slot judged due,
    for the scheduler to send with the task."""

    def __init__(self, offset_ms, period_ms, app=None):
        super().__init__(app=app)
        self.offset_ms, self.period_ms = offset_ms, period_ms
        self.due_slot = None

    def now(self):
        return dt.datetime.now(dt.timezone.utc)

    def is_due(self, last_run_at):
        now_ms = time.time_ns() // 1_000_000
        slot = (now_ms - self.offset_ms) // self.period_ms * self.period_ms + self.offset_ms
        remaining = (slot + self.period_ms - now_ms) / 1000
        if last_run_at.timestamp() * 1000 < slot:
            self.due_slot = slot
            return schedstate(True, remaining)
        return schedstate(False, remaining)

    def remaining_estimate(self, last_run_at):
        return dt.timedelta(seconds=self.is_due(last_run_at)[1])

    def __repr__(self):
        return f"<SlotSchedule {self.offset_ms}+k*{self.period_ms}ms>"

    def __reduce__(self):
        return self.__class__, (self.offset_ms, self.period_ms)


class SlotScheduler(Scheduler):
    def schedules_equal(self, old_schedules, new_schedules):
        # The stock scheduler compares every entry at every tick to notice edits; this schedule
        # is never edited while it runs.
        return old_schedules is not None and new_schedules is not None

    def apply_async(self, entry, producer=None, advance=True, **kwargs):
        entry = self.reserve(entry) if advance else entry
        return run_job.apply_async((entry.args[0], entry.schedule.due_slot), producer=producer)


def main():
    mode, jobs, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    out = sys.argv[4] if len(sys.argv) > 4 else None
    if mode not in ("minute", "second"):
        sys.exit(__doc__)
    import redis

    r = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    r.flushdb()
    # The worker's files beside OUT: its log (kept), its ready mark and its records.
    tag = (os.path.abspath(out) if out else f"/tmp/celery-peer-{os.getpid()}") + ".celery"
    for f in glob.glob(tag + ".*"):
        os.remove(f)
    env = {**os.environ, "CELERY_RECORDS": tag + ".records", "CELERY_READY_FILE": tag + ".ready",
           "PYTHONPATH": os.path.dirname(os.path.abspath(__file__))}
    pool = os.environ.get("CELERY_POOL", "threads")
    conc = os.environ.get("CELERY_CONCURRENCY", "64")
    logf = open(tag + ".worker.log", "w")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "celery_peer", "worker", "--pool", pool, "--concurrency", conc,
         "--prefetch-multiplier", "4", "--without-heartbeat", "--without-gossip", "--without-mingle",
         "-Q", QUEUE, "--loglevel", "WARNING", "-n", f"bench{os.getpid()}@%h"],
        env=env, stdout=logf, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while not os.path.exists(tag + ".ready"):
        if worker.poll() is not None or time.time() > deadline:
            sys.exit(f"celery worker did not start: see {tag}.worker.log")
        time.sleep(0.05)

    schedule = {}
    for i in range(jobs):
        offset, period = ((i % 60) * 1000, 60_000) if mode == "minute" else (0, 1000)
        schedule[f"job{i}"] = {"task": "bench.run_job", "schedule": SlotSchedule(offset, period), "args": (i,)}
    app.conf.beat_schedule = schedule
    import logging

    logging.getLogger("celery").setLevel(logging.WARNING)
    service = Service(app, max_interval=1, scheduler_cls=SlotScheduler, remote_control=False)
    service.scheduler  # builds the schedule (every entry's first run: its next slot)
    threading.Thread(target=service.start, daemon=True).start()
    print("ready", flush=True)
    time.sleep(seconds)
    service.stop()
    worker.send_signal(signal.SIGTERM)  # warm shutdown: the tasks running finish, then dump
    try:
        worker.wait(60)
    except subprocess.TimeoutExpired:
        worker.kill()
    r.flushdb()
    os.remove(tag + ".ready")
    if out:
        with open(out, "w") as f:
            for path in glob.glob(tag + ".records.*"):
                with open(path) as rf:
                    f.write(rf.read())
                os.remove(path)
    os._exit(0)


if __name__ == "__main__":
    main()
