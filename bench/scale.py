"""W1 on one PostgreSQL log with 1, 2 and 4 server processes: tasks/s, commits and events per task.

    python -m bench.scale [--db postgresql://postgres@127.0.0.1:5432/bench_scale] [--servers 1,2,4]
                          [--runs 5000] [--threads 4 | --total-threads 8] [--repeats 3] [--projector first|all|off]

The W1 shape of the peer baselines: `--runs` runs of a one-task no-op job are submitted into an empty store (in
bulk, `Client.run_many`: the submission is not what is measured), the driver's connection is closed, then the
servers are launched together and run them all. Every body appends a line to an event file (bench/tasks.py).

- end to end = runs / (last body - launch of the servers); drain = runs / (last body - first body)
- server commits per task: the write transactions that appended the servers' events, counted exactly as the
  distinct `xmin` (inserting transaction) of the events after the submission
- transactions per task: `xact_commit` + `xact_rollback` of the database in `pg_stat_database` over the servers'
  lifetime (reads included: every follower read, heartbeat and lease look; the servers are stopped, so their
  backends have flushed their counters, before it is read); rollbacks separately (write conflicts among servers)
- events per task: every event of the log / runs (created, claimed, succeeded, plus heartbeats and the servers'
  own records); server events per task: those after the submission
- CPU per task: the servers' (this process's reaped children: the servers and their projectors) and, when the
  cluster runs on this machine, PostgreSQL's (its postmaster and the backends it reaped: the whole cluster, so
  use a cluster of its own); cores busy = both / the end-to-end time

The database named by `--db` is dropped and created for every measurement (the user needs CREATEDB). With
`--projector first` (the default) the first server keeps the read models in a child process and the others run
`--projector off`, as docs/operations.md advises for several servers on one store.
"""

import argparse
import json
import os
import resource
import statistics
import time
from pathlib import Path
from typing import Any

import psycopg

from bench.run import JOBS, WORK, Bench, first, fmt, has, stop, wait_log
from bench.tasks import wall

DEFAULT_DB = "postgresql://postgres@127.0.0.1:5432/bench_scale"
TICKS = os.sysconf("SC_CLK_TCK")


def counters(url: str) -> dict[str, int]:
    """The log's last position, and the database's transaction counters so far (a fresh connection, so a fresh
    statistics snapshot)."""
    with psycopg.connect(url, autocommit=True) as conn:
        head = conn.execute("SELECT coalesce(max(notification_id), 0) FROM actorbatch_events").fetchone()
        xacts = conn.execute("SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = "
                             "current_database()").fetchone()
    assert head is not None and xacts is not None
    return {"head": int(head[0]), "commit": int(xacts[0]), "rollback": int(xacts[1])}


def postmaster_cpu_s(url: str) -> float | None:
    """CPU seconds of the PostgreSQL cluster so far: its postmaster's own and that of every backend it reaped
    (`cutime`, `cstime`), so the servers' backends count once they exited. None if the cluster is not on this
    machine (or not readable)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    try:
        status = Path(f"/proc/{row[0]}/status").read_text()
        parent = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("PPid:"))
        fields = Path(f"/proc/{parent}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, StopIteration, ValueError):
        return None
    return sum(int(f) for f in fields[11:15]) / TICKS


def children_cpu_s() -> float:
    """CPU seconds of this process's reaped children (the servers, and the projectors they reaped)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def writes_after(url: str, head: int) -> tuple[int, int, int]:
    """(events, distinct inserting transactions, all events) for the events after position `head`."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*), count(DISTINCT xmin::text), (SELECT count(*) FROM actorbatch_events) "
                           "FROM actorbatch_events WHERE notification_id > %s", (head,)).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def w1(bench: Bench, servers: int, runs: int, threads: int, projector: str) -> dict[str, Any]:
    ab = bench.reset(f"scale{servers}")
    noop = next(job for job in JOBS if job.name == "noop")
    t0 = wall()
    for start in range(0, runs, 1000):
        ab.run_many(noop.name, [{"i": i} for i in range(start, min(runs, start + 1000))])
    submit_s = wall() - t0
    bench.close()  # only the servers touch the database from here on
    time.sleep(1.5)  # the driver's backend has exited and flushed its counters
    before = counters(bench.url)
    cpu_before = children_cpu_s(), postmaster_cpu_s(bench.url)
    launch = wall()
    procs = [bench.server(threads, projector="process" if projector == "all" or (projector == "first" and k == 0)
                          else "off") for k in range(servers)]
    try:
        done = first(wait_log(bench.log, has("D", runs), timeout=900, settle=60), "D")
    finally:
        for proc in procs:
            stop(proc)
    time.sleep(1.5)  # the servers' backends have exited and flushed their counters
    after = counters(bench.url)
    servers_cpu, pg_after = children_cpu_s() - cpu_before[0], postmaster_cpu_s(bench.url)
    pg_cpu = None if pg_after is None or cpu_before[1] is None else pg_after - cpu_before[1]
    events, commits, total = writes_after(bench.url, before["head"])
    ok = len(done) == runs
    last = max(done.values(), default=None)
    transactions = after["commit"] - before["commit"] + after["rollback"] - before["rollback"]
    return {"servers": servers, "threads": threads, "completed": len(done), "submit_runs_per_s": runs / submit_s,
            "e2e_per_s": runs / (last - launch) if ok and last else None,
            "drain_per_s": runs / (last - min(done.values())) if ok and last else None,
            "boot_s": min(done.values()) - launch if done else None,
            "server_commits_per_task": commits / runs, "transactions_per_task": transactions / runs,
            "rollbacks": after["rollback"] - before["rollback"],
            "events_per_task": total / runs, "server_events_per_task": events / runs,
            "events_per_commit": events / commits if commits else None,
            "servers_cpu_ms_per_task": servers_cpu * 1000 / runs,
            "postgres_cpu_ms_per_task": None if pg_cpu is None else pg_cpu * 1000 / runs,
            "cores_busy": (servers_cpu + (pg_cpu or 0)) / (last - launch) if ok and last else None}


FIGURES = [("e2e_per_s", "end to end tasks/s"), ("drain_per_s", "drain tasks/s"), ("boot_s", "launch → first body s"),
           ("server_commits_per_task", "server commits per task"), ("events_per_commit", "events per server commit"),
           ("transactions_per_task", "transactions per task (reads too)"), ("rollbacks", "rollbacks"),
           ("events_per_task", "events per task (whole log)"), ("server_events_per_task", "server events per task"),
           ("servers_cpu_ms_per_task", "servers' CPU ms per task"),
           ("postgres_cpu_ms_per_task", "PostgreSQL CPU ms per task"),
           ("cores_busy", "cores busy (servers + PostgreSQL)")]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=DEFAULT_DB, help="a postgresql:// URL; its database is dropped and created")
    parser.add_argument("--servers", default="1,2,4", help="comma-separated server counts")
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=4, help="threads of each server")
    parser.add_argument("--total-threads", type=int, default=0, help="instead of --threads: this many threads "
                        "shared out among the servers (8: one server of 8, two of 4, four of 2)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--projector", choices=["first", "all", "off"], default="first")
    args = parser.parse_args()
    if not args.db.startswith(("postgresql://", "postgres://")):
        parser.error("--db: a postgresql:// URL (its database is dropped and created)")
    WORK.mkdir(parents=True, exist_ok=True)
    bench = Bench(args.db)
    counts = [int(n) for n in args.servers.split(",") if n]
    shared = f"{args.total_threads} threads shared among" if args.total_threads else f"{args.threads} threads on"
    print(f"store {bench.url}; {args.runs} runs; {shared} each server count; event files and server output in {WORK}",
          flush=True)
    results: dict[int, list[dict[str, Any]]] = {}
    try:
        for n in counts:
            for i in range(args.repeats):
                threads = max(1, args.total_threads // n) if args.total_threads else args.threads
                results.setdefault(n, []).append(w1(bench, n, args.runs, threads, args.projector))
                print(f"{n} server(s) run {i + 1}: {json.dumps(results[n][-1])}", flush=True)
    finally:
        bench.close()
    print(f"\nmedians of {args.repeats} (each run's value below)")
    print(f"{'':36}" + "".join(f"{f'{n} server(s)':>20}" for n in counts))
    for key, label in FIGURES:
        medians = []
        for n in counts:
            values = [r[key] for r in results[n]]
            medians.append("-" if None in values else fmt(statistics.median(values)))
        print(f"{label:36}" + "".join(f"{m:>20}" for m in medians))
        if args.repeats > 1:
            print(f"{'':36}" + "".join(f"{' '.join(fmt(r[key]) for r in results[n]):>20}" for n in counts))
    base = [r["e2e_per_s"] for r in results.get(counts[0], []) if r["e2e_per_s"]]
    for n in counts[1:]:
        other = [r["e2e_per_s"] for r in results[n] if r["e2e_per_s"]]
        if base and other:
            print(f"end to end, {n} servers / {counts[0]}: {statistics.median(other) / statistics.median(base):.2f}")


if __name__ == "__main__":
    main()
