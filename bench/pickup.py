"""Pickup across processes: how long a run submitted by one process waits before a server process starts it, and
what an idle server costs.

    python -m bench.pickup [--db sqlite|postgresql://...] [--runs 50] [--idle-s 10]

A real `actorbatch server start` process (2 threads, its projector in a child process) runs a one-task no-op job.
The benchmark process submits one run at a time, 50-250 ms apart so that the server is idle each time, and
latency = the task's `started_at` (the server's claim) - the moment just before `run_job` was called: one commit of
the client, the server hearing it and one commit of the server; also from the moment `run_job` returned (the
submitter's commit done), which is the server's part. Then, with nothing to do, the server's CPU time is
read from /proc/PID/stat over `--idle-s` seconds: the server process and, separately, its projector child.
"""

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import actorbatch
from actorbatch.clock import SystemClock
from actorbatch.domain.jobfile import parse_job
from bench.chain import fresh_store

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (fields 14 and 15 of /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def started_at(detail: dict[str, object]) -> datetime:
    task = detail["tasks"][0]  # type: ignore[index]
    return datetime.fromisoformat(str(task["started_at"]).replace("Z", "+00:00"))


def measure(url: str, runs: int, idle_s: float) -> tuple[list[float], list[float], float, float]:
    clock = SystemClock()
    with actorbatch.connect(url, user="bench") as client:
        client.add_job(parse_job({"name": "pickup", "tasks": [{"name": "t", "run": "actorbatch.examples:noop"}]}),
                       replace=True)
        server = subprocess.Popen([sys.executable, "-m", "actorbatch", "--db", url, "server", "start", "--name",
                                   "pickup", "--threads", "2", "--projector", "process"], cwd=ROOT,
                                  stderr=subprocess.DEVNULL)
        try:
            client.wait(client.run_job("pickup"), timeout=60)  # warm: the server is up and has run once
            latencies, after_commit = [], []
            for _ in range(runs):
                time.sleep(random.uniform(0.05, 0.25))  # noqa: S311 - spacing, not secrets
                submitted = clock.now()
                run_id = client.run_job("pickup")
                committed = clock.now()
                started = started_at(client.wait(run_id, timeout=60, poll_s=0.01))
                latencies.append((started - submitted).total_seconds() * 1000)
                after_commit.append((started - committed).total_seconds() * 1000)
            time.sleep(2)  # let the last run's echoes settle (read models, heartbeats)
            kids = children(server.pid)
            before = cpu_s(server.pid), sum(cpu_s(k) for k in kids)
            time.sleep(idle_s)
            after = cpu_s(server.pid), sum(cpu_s(k) for k in kids)
            cpu = [(a - b) / idle_s * 100 for a, b in zip(after, before, strict=True)]
            return latencies, after_commit, cpu[0], cpu[1]
        finally:
            server.terminate()
            server.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="sqlite", help="sqlite (a temporary file) or a PostgreSQL URL")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--idle-s", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as folder:
        url = fresh_store(args.db, Path(folder))
        latencies, after_commit, server_cpu, projector_cpu = measure(url, args.runs, args.idle_s)
    store = "sqlite" if args.db == "sqlite" else "postgresql"
    print(f"{store}: submitted -> started across processes, {len(latencies)} runs: "
          f"p50 {statistics.median(latencies):.1f} ms, p99 {percentile(latencies, 0.99):.1f} ms, "
          f"max {max(latencies):.1f} ms; from the submitter's commit: p50 {statistics.median(after_commit):.1f} ms, "
          f"p99 {percentile(after_commit, 0.99):.1f} ms")
    print(f"{store}: idle server over {args.idle_s:g} s: {server_cpu:.2f}% of a core "
          f"(its projector process: {projector_cpu:.2f}%)")


if __name__ == "__main__":
    main()
