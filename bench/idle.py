"""What an idle server costs: its CPU, and on PostgreSQL the statements it sends, while there is nothing to do.

    python -m bench.idle [--db sqlite|postgresql://postgres@127.0.0.1:5432/bench_idle] [--settle-s 5]
                         [--window-s 20] [--windows 3] [--threads 2] [--projector process|thread|off]

A real `actorbatch server start` process on a fresh store (a PostgreSQL database named by --db is dropped and
created) runs one warm-up run, so it has read, claimed and recorded once; the benchmark then closes its own
connection, waits --settle-s and samples the server over --windows windows of --window-s seconds:

- CPU: user + system time from /proc/PID/stat, of the server process and, separately, of its children (the
  projector process), as a percentage of one core;
- wake-ups: the context switches of the server process's threads (/proc/PID/task/*/status), per second: how
  often something woke a thread, which the machine's load moves much less than CPU time;
- PostgreSQL, statements: with `pg_stat_statements` loaded (`shared_preload_libraries`), the calls of every
  statement in this database during the window, by statement; otherwise only the transactions
  (`xact_commit` + `xact_rollback` of `pg_stat_database`; PostgreSQL may report an idle backend's counts up to
  a few seconds late, so these are approximate per window).
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

import actorbatch
from actorbatch.domain.jobfile import parse_job
from bench.chain import fresh_store
from bench.pickup import children, cpu_s

ROOT = Path(__file__).resolve().parent.parent


def statements_available(url: str) -> bool:
    """pg_stat_statements can be read in this database (created here if the library is loaded)."""
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            conn.execute("SELECT count(*) FROM pg_stat_statements")
    except psycopg.Error:
        return False
    return True


def pg_counts(url: str, statements: bool) -> dict[str, Any]:
    """The database's transactions so far and, if available, every statement's calls so far."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT xact_commit + xact_rollback FROM pg_stat_database "
                           "WHERE datname = current_database()").fetchone()
        calls: dict[str, int] = {}
        if statements:
            for query, n in conn.execute(
                    "SELECT query, calls FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database "
                    "WHERE datname = current_database()) AND query NOT LIKE %s", ("%pg_stat%",)):
                key = " ".join(query.split())[:100]
                calls[key] = calls.get(key, 0) + int(n)
    assert row is not None
    return {"xacts": int(row[0]), "calls": calls}


def switches(pid: int) -> int:
    """Context switches of the process's threads so far (voluntary and not)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        total += sum(int(line.split()[1]) for line in status.splitlines() if "ctxt_switches:" in line)
    return total


def sample(pid: int, url: str, window_s: float, statements: bool) -> dict[str, Any]:
    pg = url.startswith("postgres")
    kids = children(pid)
    counts = pg_counts(url, statements) if pg else None
    cpu0, kids0, woke0, t0 = cpu_s(pid), sum(cpu_s(k) for k in kids), switches(pid), time.monotonic()
    time.sleep(window_s)
    cpu1, kids1, woke1 = cpu_s(pid), sum(cpu_s(k) for k in kids), switches(pid)
    seconds = time.monotonic() - t0
    figures: dict[str, Any] = {"server_cpu_pct": (cpu1 - cpu0) / seconds * 100,
                               "children_cpu_pct": (kids1 - kids0) / seconds * 100,
                               "server_wakeups_per_s": (woke1 - woke0) / seconds}
    if counts is not None:
        later = pg_counts(url, statements)
        figures["transactions_per_s"] = (later["xacts"] - counts["xacts"]) / seconds
        if statements:
            delta = {q: n - counts["calls"].get(q, 0) for q, n in later["calls"].items()}
            figures["statements_per_s"] = sum(delta.values()) / seconds
            figures["statements"] = {q: n for q, n in sorted(delta.items(), key=lambda kv: -kv[1]) if n}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.idle", description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="sqlite", help="sqlite (a temporary file) or a postgresql:// URL "
                        "(its database is dropped and created)")
    parser.add_argument("--settle-s", type=float, default=5.0)
    parser.add_argument("--window-s", type=float, default=20.0)
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--projector", choices=["process", "thread", "off"], default="process")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as folder:
        url = fresh_store(args.db, Path(folder))
        pg = url.startswith("postgres")
        statements = pg and statements_available(url)
        with actorbatch.connect(url, user="bench") as client:
            client.add_job(parse_job({"name": "warm", "tasks": [{"name": "t", "run": "actorbatch.examples:noop"}]}))
            server = subprocess.Popen([sys.executable, "-m", "actorbatch", "--db", url, "server", "start", "--name",
                                       "idle", "--threads", str(args.threads), "--projector", args.projector],
                                      cwd=ROOT, stderr=subprocess.DEVNULL)
            try:
                client.wait(client.run_job("warm"), timeout=120)
            except BaseException:
                server.terminate()
                raise
        try:
            time.sleep(args.settle_s)
            print(f"server pid {server.pid}, {'postgresql' if pg else 'sqlite'}, "
                  f"statements counted by {'pg_stat_statements' if statements else 'transactions only'}"
                  if pg else f"server pid {server.pid}, sqlite", flush=True)
            windows = []
            for i in range(args.windows):
                windows.append(sample(server.pid, url, args.window_s, statements))
                shown = {k: round(v, 2) for k, v in windows[-1].items() if k != "statements"}
                print(f"window {i + 1} ({args.window_s:g} s): {shown}", flush=True)
                for query, n in list(windows[-1].get("statements", {}).items())[:8]:
                    print(f"    {n:6d}  {query}")
        finally:
            server.terminate()
            server.wait(timeout=60)
    keys = [k for k in windows[0] if k != "statements"]
    print(f"median of {len(windows)} windows: " + ", ".join(
        f"{k} {statistics.median(w[k] for w in windows):.2f}" for k in keys))


if __name__ == "__main__":
    main()
