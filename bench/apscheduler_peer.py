"""APScheduler 3.x running the benchmark's job sets, for bench/run.

python apscheduler_peer.py minute|second|idle JOBS SECONDS [OUT]
  minute: job i fires once a minute at second i % 60  (CronTrigger(second=i % 60))
  second: every job fires every second                 (CronTrigger(second='*'))
  idle:   every job fires once a year                  (CronTrigger(month=1, day=1, hour=0, minute=0, second=0))

Each fire starts `sh -c true` with subprocess.Popen (which returns once the child has exec'd)
and records the child-start lateness: the time right after Popen returned minus the slot (the
latest slot of the job at or before the moment the job body started; exact while lateness stays
under the job's period). With BENCH_FIFO set (the observed rows) the child is
`sh -c 'echo <job> <slot_ms> > FIFO'` instead, for bench/peers/src/bin/fifo_stamp.rs to stamp
when the job's first command ran. Prints "ready" once the scheduler runs, runs SECONDS, then writes
"slot_ms lateness_us" lines to OUT.

Configuration (its fair best for many short jobs): BackgroundScheduler, a ThreadPoolExecutor
with WORKERS threads (env APS_WORKERS, default 256), coalesce=False, misfire_grace_time=3600
(late runs still run, none is dropped), max_instances=1000 (overlap allowed, as for cronstack's
`overlap: allow`), the MemoryJobStore, UTC.
"""

import os
import subprocess
import sys
import time

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

records = []
FIFO = os.environ.get("BENCH_FIFO")


def make_job(job, offset_ms, period_ms):
    def fire():
        begun = time.time_ns() // 1_000_000
        slot = (begun - offset_ms) // period_ms * period_ms + offset_ms
        child = subprocess.Popen(["sh", "-c", f"echo {job} {slot} > {FIFO}" if FIFO else "true"])
        started = time.time_ns() // 1000
        records.append((slot, started - slot * 1000))
        child.wait()

    return fire


def main():
    mode, jobs, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    out = sys.argv[4] if len(sys.argv) > 4 else None
    workers = int(os.environ.get("APS_WORKERS", "256"))
    sched = BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(max_workers=workers)},
        job_defaults={"coalesce": False, "misfire_grace_time": 3600, "max_instances": 1000},
        timezone="UTC",
    )
    for i in range(jobs):
        if mode == "minute":
            trigger, offset, period = CronTrigger(second=i % 60, timezone="UTC"), (i % 60) * 1000, 60_000
        elif mode == "second":
            trigger, offset, period = CronTrigger(second="*", timezone="UTC"), 0, 1000
        elif mode == "idle":
            trigger = CronTrigger(month=1, day=1, hour=0, minute=0, second=0, timezone="UTC")
            offset, period = 0, 1
        else:
            sys.exit(__doc__)
        sched.add_job(make_job(i, offset, period), trigger, id=f"job{i}")
    sched.start()
    print("ready", flush=True)
    time.sleep(seconds)
    if out:
        with open(out, "w") as f:
            f.writelines(f"{slot} {late}\n" for slot, late in list(records))
    os._exit(0)


if __name__ == "__main__":
    main()
