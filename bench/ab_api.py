"""A/B of two cronstack binaries on the api row's reads: both servers set up as `api()` in
driver.py does (SQLite or PostgreSQL, 1,000 jobs, token auth), both up at once, wrk run on
A and B interleaved (A,B then B,A each round), with each server's CPU time per request
(user + system, from /proc) beside its req/s: on a shared, noisy machine CPU per request
varies less than req/s.

    python3 bench/ab_api.py BIN_A BIN_B sqlite|postgres ROUNDS SECONDS [v1list v1id v3list v3job]
"""
import datetime as dt
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import driver as d  # noqa: E402

bin_a, bin_b, kind, rounds, dur = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
labels = sys.argv[6:] or ["v1list", "v1id", "v3list", "v3job"]
os.makedirs(d.WORK, exist_ok=True)
n = 1000
year = dt.datetime.now(dt.timezone.utc).year + 1
jan1 = int(dt.datetime(year, 1, 1, tzinfo=dt.timezone.utc).timestamp() * 1000)
servers = {}
try:
    for tag, binary in (("A", bin_a), ("B", bin_b)):
        d.CRONSTACK = binary
        db = d.Db(kind, f"ab_{kind}_{tag.lower()}")
        token, stack_uid = d.seed(db, ["0 0 0 1 1 *"], [(0, jan1)] * n)
        server = d.Server(db, f"ab-{kind}-{tag}").start()
        servers[tag] = (server, db, token, {})
        server.wait_ready()
        job_uid = db.query(f"SELECT uid FROM jobs WHERE id = {n // 2}")[0][0]
        paths = servers[tag][3]
        paths.update({
            "v1list": "/api/v1/jobs",
            "v1id": f"/api/v1/jobs/byid/{n // 2}",
            "v3list": f"/api/3/stacks/{stack_uid}/jobs",
            "v3job": f"/api/3/stacks/{stack_uid}/jobs/{job_uid}",
        })
        for p in paths.values():
            assert d.http_get(server.base + p, token)[0] == 200, p
    rps = {(t, label): [] for t in "AB" for label in labels}
    cpu = {(t, label): [] for t in "AB" for label in labels}
    for r in range(rounds):
        for label in labels:
            for t in "AB" if r % 2 == 0 else "BA":
                server, db, token, paths = servers[t]
                c0 = d.proc_cpu(server.p.pid)
                w = d.wrk(server.base + paths[label], duration=dur, token=token)
                c1 = d.proc_cpu(server.p.pid)
                assert w["non2xx"] == 0, w
                us = (c1 - c0) * 1e6 / (w["rps"] * dur)
                rps[(t, label)].append(w["rps"])
                cpu[(t, label)].append(us)
                print(f"round {r} {label} {t}: {w['rps']:.0f} req/s, server {us:.2f} us CPU/request", flush=True)
finally:
    for server, db, *_ in servers.values():
        server.stop()
        db.drop()


def mean(xs):
    return sum(xs) / len(xs)


for label in labels:
    for name, table, fmt in (("req/s", rps, "{:.0f}"), ("us CPU/request", cpu, "{:.2f}")):
        a, b = table[("A", label)], table[("B", label)]
        print(f"{label} {name}: A {[fmt.format(x) for x in a]} mean {fmt.format(mean(a))}"
              f" | B {[fmt.format(x) for x in b]} mean {fmt.format(mean(b))} | B/A {mean(b) / mean(a):.3f}")
