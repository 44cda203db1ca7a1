"""Benchmark actorbatch on the peers' four workloads, so its figures sit beside theirs and beside DESIGN §4.

    python -m bench.run [--only W1,W2,...] [--db sqlite|postgresql://postgres@127.0.0.1:5432/bench] [--repeats 3]

The workloads and figures are those of the peer baselines (../shared/peers beside the project: README "How it
measures" and _common.py). This process is the client: it submits through the Python API, one run per call from one
thread. The worker is `actorbatch server start`, a real process in its own process group, so kill -9 takes it down
whole. Every task body appends a line to a per-run event file (bench/tasks.py) and every figure is computed from
that file, at the moment bodies ran. Each "job" of the peers is one run of a one-task job here; a W3 chain is one
run of a two-task job whose second task waits for the first to succeed. Prints the median of --repeats runs with
each run's value and the target beside it, and writes everything to bench/results.json.
"""

import argparse
import datetime
import json
import operator
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

import actorbatch
from actorbatch.domain.jobfile import parse_job
from bench.tasks import LOG_ENV, wall

ROOT = Path(__file__).resolve().parent.parent  # on the server's PYTHONPATH, so it can import bench.tasks
WORK = Path(tempfile.gettempdir()) / "actorbatch-bench"  # SQLite store, event files, server output
RESULTS = Path(__file__).resolve().parent / "results.json"
N_W1, N_W2, N_W3, N_W4 = 5000, 200, 1000, 100  # the peers' sizes
THREADS = 4
LEASE_TIMEOUT_S = 3.0

JOBS = [parse_job({"name": name, "tasks": tasks}) for name, tasks in {
    "noop": [{"name": "t", "run": "bench.tasks:noop"}],
    "warm": [{"name": "t", "run": "bench.tasks:warm"}],
    "at": [{"name": "t", "run": "bench.tasks:at"}],
    "chain": [{"name": "a", "run": "bench.tasks:step_a"},
              {"name": "b", "run": "bench.tasks:step_b", "after": {"a": "succeeded"}}],
    "sleeper": [{"name": "t", "run": "bench.tasks:sleeper"}],
}.items()]

Events = list[tuple[Any, ...]]


# ---------------------------------------------------------------- the event file
def read_log(path: Path) -> Events:
    """(kind, id, unix time, *rest) for every complete line."""
    if not path.exists():
        return []
    with path.open() as f:
        return [(p[0], p[1], float(p[2]), *p[3:]) for line in f if line.endswith("\n") and len(p := line.split()) >= 3]


def wait_log(path: Path, done: Callable[[Events], bool], timeout: float, settle: float | None = None) -> Events:
    """Poll until done(events), `timeout` passes, or (with `settle`) no line arrived for `settle` seconds."""
    deadline, seen, changed = time.monotonic() + timeout, -1, time.monotonic()
    while True:
        events = read_log(path)
        if done(events):
            return events
        if len(events) != seen:
            seen, changed = len(events), time.monotonic()
        if time.monotonic() > deadline or (settle is not None and time.monotonic() - changed > settle):
            return events
        time.sleep(0.02)


def has(kind: str, n: int) -> Callable[[Events], bool]:
    return lambda events: len(first(events, kind)) >= n


def first(events: Events, kind: str) -> dict[str, float]:
    """id -> time of the first line of this kind for that id."""
    times: dict[str, float] = {}
    for e in events:
        if e[0] == kind:
            times.setdefault(e[1], e[2])
    return times


def running(events: Events) -> bool:
    """Some sleeper started and has not ended."""
    return bool(first(events, "S").keys() - first(events, "E").keys())


def pct(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile, as the peers compute it."""
    v = sorted(values)
    if not v:
        return None
    k = (len(v) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


# ---------------------------------------------------------------- the store under test and its servers
class Bench:
    """A fresh store per workload run, the driver's client on it, and the server processes."""

    def __init__(self, db: str) -> None:
        self.url = f"sqlite:///{WORK / 'bench.db'}" if db == "sqlite" else db
        self.kind = "sqlite" if self.url.startswith("sqlite:") else "postgresql"
        self.ab: actorbatch.Client | None = None
        self.log = WORK / "none.log"

    def reset(self, tag: str) -> actorbatch.Client:
        """Empty store holding the benchmark's jobs, and a new event file; returns the driver's client."""
        self.close()
        if self.kind == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                Path(self.url[len("sqlite:///"):] + suffix).unlink(missing_ok=True)
        else:
            admin, name = self.url.rsplit("/", 1)
            with psycopg.connect(admin + "/postgres", autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        actorbatch.init(self.url)
        self.ab = actorbatch.connect(self.url, user="bench")
        self.ab.add_jobs(JOBS)
        self.log = WORK / f"{tag}-{time.time_ns()}.log"
        os.environ[LOG_ENV] = str(self.log)  # read by bodies run in this process, inherited by server processes
        return self.ab

    def close(self) -> None:
        if self.ab is not None:
            self.ab.close()
            self.ab = None

    def server(self, threads: int = THREADS, projector: str = "process") -> subprocess.Popen[bytes]:
        """`actorbatch server start` in its own process group; output appended to WORK/server.out."""
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        command = [sys.executable, "-m", "actorbatch", "--db", self.url, "server", "start", "--name",
                   f"bench-{time.time_ns()}", "--threads", str(threads), "--lease-timeout", str(LEASE_TIMEOUT_S),
                   "--projector", projector]
        with (WORK / "server.out").open("ab") as out:
            return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def commits(self) -> int:
        """Write transactions so far. SQLite: the WAL-index header's change counter (iChange, bytes 8-11 of the
        -shm file, see sqlite.org/walformat.html), bumped by every commit of any process and kept while a
        connection is open (the driver's is). It is read by a child process because closing any descriptor of the
        file in this process would drop this process's SQLite locks on it. PostgreSQL: transaction ids handed
        out so far, cluster-wide."""
        if self.kind == "sqlite":
            shm = self.url[len("sqlite:///"):] + "-shm"
            return int(subprocess.run(["od", "-An", "-tu4", "-j8", "-N4", shm], capture_output=True, text=True,
                                      check=True).stdout)
        with psycopg.connect(self.url, autocommit=True) as conn:
            row = conn.execute("SELECT pg_current_xact_id()::text").fetchone()
            assert row is not None
            return int(row[0])

    def warm_up(self) -> None:
        """One run through the server, so its start-up is not measured."""
        assert self.ab is not None
        self.ab.run_job("warm")
        if not has("X", 1)(wait_log(self.log, has("X", 1), timeout=60)):
            raise RuntimeError(f"the server never ran the warm-up run; see {WORK / 'server.out'}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM: the server drains and exits 0. Anything else is worth a look, so say so."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            print(f"  ! server {proc.pid} did not stop within 30 s of SIGTERM: killed", file=sys.stderr)
    if proc.returncode != 0:
        print(f"  ! server {proc.pid} exited with {proc.returncode}; see {WORK / 'server.out'}", file=sys.stderr)


# ---------------------------------------------------------------- workloads W1-W4
def w1_throughput(b: Bench, threads: int) -> dict[str, Any]:
    """Enqueue N no-op runs into an empty store, then one server runs them all; then rebuild the projections."""
    ab = b.reset("w1")
    t0 = wall()
    for i in range(N_W1):
        ab.run_job("noop", params={"i": i})
    enqueue_s = wall() - t0
    commits, launch = b.commits(), wall()
    proc = b.server(threads)
    try:
        done = first(wait_log(b.log, has("D", N_W1), timeout=600, settle=60), "D")
    finally:
        stop(proc)
    commits = b.commits() - commits
    ok = len(done) == N_W1
    last = max(done.values(), default=None)
    started = time.perf_counter()
    rebuilt = ab.rebuild_projections()
    rebuild_s = time.perf_counter() - started
    return {"enqueue_per_s": N_W1 / enqueue_s, "completed": len(done),
            "succeeded": len(ab.runs(status="succeeded", limit=10**9)),
            "e2e_per_s": N_W1 / (last - launch) if ok and last else None,
            "drain_per_s": N_W1 / (last - min(done.values())) if ok and last else None,
            "boot_s": min(done.values()) - launch if done else None,
            "events_per_task": ab.store.head() / N_W1, "commits_per_task": commits / N_W1,
            "rebuild_events": rebuilt, "rebuild_events_per_s": rebuilt / rebuild_s}


def w2_latency(b: Bench, in_process: bool) -> dict[str, Any]:
    """N runs due at t0 + 2 s + i * 50 ms on a warm server; each body records its start minus its due time."""
    ab = b.reset("w2")
    server = (actorbatch.Server(ab, name=f"bench-{time.time_ns()}", threads=THREADS, lease_timeout_s=LEASE_TIMEOUT_S)
              .start() if in_process else b.server())
    try:
        b.warm_up()
        t0 = wall()
        for i in range(N_W2):
            due = t0 + 2 + i * 0.05
            ab.run_job("at", params={"i": i, "due": due}, at=datetime.datetime.fromtimestamp(due, datetime.UTC))
        events = wait_log(b.log, has("L", N_W2), timeout=2 + N_W2 * 0.05 + 60)
    finally:
        server.stop() if isinstance(server, actorbatch.BatchServer) else stop(server)
    lat = [(e[2] - float(e[3])) * 1000 for e in events if e[0] == "L"]
    return {"ran": len(lat), "p50_ms": pct(lat, 50), "p95_ms": pct(lat, 95), "p99_ms": pct(lat, 99),
            "max_ms": max(lat, default=None), "min_ms": min(lat, default=None)}


def w3_chains(b: Bench) -> dict[str, Any]:
    """N runs of a → b (b after a succeeded) enqueued, then one server runs them; b must never start before a ended."""
    ab = b.reset("w3")
    t0 = wall()
    for i in range(N_W3):
        ab.run_job("chain", params={"i": i})
    enqueue_s, launch = wall() - t0, wall()
    proc = b.server()
    try:
        events = wait_log(b.log, has("B", N_W3), timeout=600, settle=60)
    finally:
        stop(proc)
    a_end, b_start = first(events, "A"), first(events, "B")
    ok = len(b_start) == N_W3
    last = max(b_start.values(), default=None)
    return {"enqueue_chains_per_s": N_W3 / enqueue_s, "chains_done": len(b_start),
            "order_violations": sum(1 for i, t in b_start.items() if t < a_end.get(i, float("inf"))),
            "e2e_chains_per_s": N_W3 / (last - launch) if ok and last else None,
            "drain_chains_per_s": N_W3 / (last - min(a_end.values())) if ok and last else None}


def w4_recovery(b: Bench, secs: float = 0.2, settle: float = 15.0) -> dict[str, Any]:
    """kill -9 the server's process group mid-body once half the sleepers finished; start a new server at once."""
    ab = b.reset("w4")
    proc = b.server()
    try:
        b.warm_up()
        for i in range(N_W4):
            ab.run_job("sleeper", params={"i": i, "secs": secs})
        wait_log(b.log, has("E", N_W4 // 2), timeout=120)
        wait_log(b.log, running, timeout=30)
        time.sleep(secs / 2)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        killed = wall()
        cut = len(read_log(b.log))
        proc = b.server()
        events = wait_log(b.log, has("E", N_W4), timeout=settle + 120, settle=settle)
    finally:
        stop(proc)
    old, new = events[:cut], events[cut:]
    inflight = first(old, "S").keys() - first(old, "E").keys()
    ended = first(events, "E")
    new_starts = [e for e in new if e[0] == "S"]
    reruns = [e[2] for e in new_starts if e[1] in inflight]
    return {"done_before_kill": len(first(old, "E")), "inflight_at_kill": len(inflight),
            "completed": len(ended), "lost": N_W4 - len(ended),
            "ran_twice": sum(1 for n in Counter(e[1] for e in events if e[0] == "S").values() if n > 1),
            "resume_s": min(e[2] for e in new_starts) - killed if new_starts else None,
            "inflight_rerun_s": min(reruns) - killed if reruns else None,
            "all_done_s": max(ended.values()) - killed if len(ended) == N_W4 else None}


# ---------------------------------------------------------------- plan, table, results file
Target = tuple[str, float] | None
Row = tuple[str, str, Target]  # figure key, what it measures, DESIGN §4 target (or a must-hold count)
OPS = {">=": operator.ge, "<=": operator.le, "==": operator.eq}


def plan(kind: str) -> list[tuple[str, Callable[..., dict[str, Any]], dict[str, Any], list[Row]]]:
    """(label, workload, its arguments, rows of the table); targets are DESIGN §4's for this store."""
    pg = kind == "postgresql"
    w1: list[Row] = [("enqueue_per_s", "enqueue runs/s", None), ("completed", "bodies run", ("==", N_W1)),
                     ("succeeded", "runs succeeded", ("==", N_W1)),
                     ("e2e_per_s", "end-to-end tasks/s", (">=", 2600 if pg else 10_000)),
                     ("drain_per_s", "drain tasks/s", None), ("boot_s", "launch → first body s", None),
                     ("events_per_task", "events in the log per task", None),
                     ("commits_per_task", "server commits per task", None),
                     ("rebuild_events_per_s", "projection rebuild events/s", (">=", 100_000))]

    def w2(p99: float) -> list[Row]:
        return [("ran", "runs started", ("==", N_W2)), ("p50_ms", "due → start p50 ms", None),
                ("p95_ms", "due → start p95 ms", None), ("p99_ms", "due → start p99 ms", ("<=", p99)),
                ("max_ms", "due → start max ms", None)]

    return [
        (f"W1 throughput, threads={THREADS}", w1_throughput, {"threads": THREADS}, w1),
        ("W1 throughput, threads=2", w1_throughput, {"threads": 2}, w1),
        ("W2a latency, submitted in another process", w2_latency, {"in_process": False}, w2(20 if pg else 100)),
        ("W2b latency, same process", w2_latency, {"in_process": True}, w2(2)),
        ("W3 chains", w3_chains, {}, [
            ("enqueue_chains_per_s", "enqueue chains/s", None), ("chains_done", "chains done", ("==", N_W3)),
            ("order_violations", "b started before a ended", ("==", 0)),
            ("e2e_chains_per_s", "end-to-end chains/s", None), ("drain_chains_per_s", "drain chains/s", None)]),
        ("W4 recovery after kill -9", w4_recovery, {}, [
            ("done_before_kill", "done before the kill", None), ("inflight_at_kill", "in flight at the kill", None),
            ("completed", "completed", ("==", N_W4)), ("lost", "lost", ("==", 0)),
            ("ran_twice", "ran twice", None), ("resume_s", "kill → first start on new server s", None),
            ("inflight_rerun_s", "kill → in-flight re-run s", ("<=", LEASE_TIMEOUT_S + 1)),
            ("all_done_s", "kill → all done s", None)]),
    ]


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of every figure over the runs; None if any run lacks it."""
    return {k: None if any(r[k] is None for r in runs) else statistics.median(r[k] for r in runs) for k in runs[0]}


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 or float(value).is_integer() else f"{value:.2f}"


def table(kind: str, results: dict[str, Any], rows: dict[str, list[Row]]) -> str:
    lines = [f"{kind}; one server with {THREADS} threads unless the label says otherwise",
             f"{'measure':<38} {'target':>10} {'median':>10}  {'':4} runs"]
    for label, figures in results.items():
        lines.append(label)
        for key, measure, target in rows[label]:
            value = figures["median"][key]
            met = target is not None and value is not None and OPS[target[0]](value, target[1])
            verdict = "" if target is None else "ok" if met else "MISS"
            target_text = "" if target is None else f"{target[0]} {fmt(target[1])}"
            raw = "  ".join(fmt(r[key]) for r in figures["runs"])
            lines.append(f"  {measure:<36} {target_text:>10} {fmt(value):>10}  {verdict:4} {raw}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated label prefixes, e.g. W1,W2a")
    parser.add_argument("--db", default="sqlite", help="sqlite (a file in the temp folder) or a postgresql:// URL "
                        "naming a database to drop and create on every run")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.db != "sqlite" and not args.db.startswith(("postgresql://", "postgres://")):
        parser.error("--db: expected sqlite or a postgresql:// URL (its database is dropped and created)")
    WORK.mkdir(parents=True, exist_ok=True)
    bench = Bench(args.db)
    only = [o for o in args.only.split(",") if o]
    chosen = [p for p in plan(bench.kind) if not only or any(p[0].startswith(o) for o in only)]
    print(f"store {bench.url}; event files and server output in {WORK}", flush=True)
    results: dict[str, Any] = {}
    try:
        for label, workload, kwargs, _ in chosen:
            runs = []
            for i in range(args.repeats):
                runs.append(workload(bench, **kwargs))
                print(f"{label} run {i + 1}: {json.dumps(runs[-1])}", flush=True)
            results[label] = {"median": median_of(runs), "runs": runs}
    finally:
        bench.close()
    print()
    print(table(bench.kind, results, {p[0]: p[3] for p in chosen}))
    saved = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    entry = saved.setdefault(bench.kind, {"workloads": {}})
    date = datetime.datetime.fromtimestamp(wall(), datetime.UTC).isoformat(timespec="seconds")
    entry.update({"url": bench.url, "date": date,
                  "repeats": args.repeats, "python": platform.python_version(), "cpus": os.cpu_count(),
                  "sizes": {"W1": N_W1, "W2": N_W2, "W3": N_W3, "W4": N_W4}, "lease_timeout_s": LEASE_TIMEOUT_S})
    entry["workloads"].update(results)
    RESULTS.write_text(json.dumps(saved, indent=1))
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
