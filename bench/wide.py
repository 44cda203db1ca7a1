"""Benchmark wide runs: one run of N independent tasks, on real server processes, for N = 1k, 4k, 10k (and 50k).

    python -m bench.wide [--sizes 1000,4000,10000] [--servers 1,2] [--big] [--timeout 900]

For each size and each server count: a fresh SQLite file, `actorbatch server start` processes (4 threads each, as
in bench.run), a warm-up run so their start-up is not measured, then ONE run of a job with N independent tasks.
Wall time is from the submission to the last task body's line in the event file (bench/tasks.py); peak RSS is each
server process's VmHWM (/proc/PID/status), read just before it is stopped, and the same for its projector child.

DESIGN §4 targets: time(4,000 tasks) / time(1,000 tasks) <= 5 on one server; a 10,000-task run on two servers with
each server's RSS <= 250 MB.
"""

import argparse
import json
from pathlib import Path
from typing import Any

from actorbatch.domain.jobfile import parse_job
from bench.run import WORK, Bench, first, has, stop, wait_log
from bench.tasks import wall

BIG = 50_000
SETTLE_S = 120.0  # no new body for this long: the run is stuck, stop waiting


def wide_job(n: int) -> Any:
    return parse_job({"name": f"wide-{n}", "tasks": [{"name": f"t{i:05d}", "run": "bench.tasks:wide"}
                                                     for i in range(n)]})


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM of a live process, in MB; None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    kb = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), None)
    return None if kb is None else kb / 1024


def children(pid: int) -> list[int]:
    """The direct children of a process (the projector runs in one)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def wide_run(b: Bench, n: int, servers: int, timeout_s: float) -> dict[str, Any]:
    """One run of n independent tasks on `servers` warm server processes."""
    ab = b.reset(f"wide{n}x{servers}")
    ab.add_job(wide_job(n))
    procs = [b.server() for _ in range(servers)]
    try:
        b.warm_up()
        t0 = wall()
        ab.run_job(f"wide-{n}")
        submitted = wall()
        done = first(wait_log(b.log, has("T", n), timeout=timeout_s, settle=SETTLE_S), "T")
        rss = [peak_rss_mb(p.pid) for p in procs]
        projector_rss = [max((peak_rss_mb(c) or 0 for c in children(p.pid)), default=None) for p in procs]
    finally:
        for proc in procs:
            stop(proc)
    last = max(done.values(), default=None)
    wall_s = last - t0 if last is not None and len(done) == n else None
    return {"tasks": n, "servers": servers, "completed": len(done), "submit_s": submitted - t0, "wall_s": wall_s,
            "tasks_per_s": n / wall_s if wall_s else None, "rss_mb": rss, "projector_rss_mb": projector_rss}


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def row(r: dict[str, Any]) -> str:
    rss = " / ".join(fmt(m, 0) for m in r["rss_mb"])
    projector = " / ".join(fmt(m, 0) for m in r["projector_rss_mb"])
    return (f"{r['tasks']:>7,} {r['servers']:>7} {r['completed']:>9,} {fmt(r['wall_s']):>8} "
            f"{fmt(r['tasks_per_s'], 0):>8}  {rss:<14} {projector}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.wide", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,4000,10000", help="comma-separated task counts")
    parser.add_argument("--servers", default="1,2", help="comma-separated server counts, each size runs on each")
    parser.add_argument("--big", action="store_true", help=f"also a {BIG:,}-task run (minutes)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for one run")
    parser.add_argument("--db", default="sqlite", help="sqlite (a file in the temp folder) or a postgresql:// URL "
                        "naming a database to drop and create on every run")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s] + ([BIG] if args.big else [])
    WORK.mkdir(parents=True, exist_ok=True)
    bench = Bench(args.db)
    print(f"store {bench.url}; event files and server output in {WORK}", flush=True)
    print(f"{'tasks':>7} {'servers':>7} {'completed':>9} {'wall s':>8} {'tasks/s':>8}  {'peak RSS MB':<14} "
          "projector RSS MB", flush=True)
    results = []
    try:
        for n in sizes:
            for servers in (int(s) for s in args.servers.split(",") if s):
                results.append(wide_run(bench, n, servers, args.timeout))
                print(row(results[-1]), flush=True)
    finally:
        bench.close()
    one = {r["tasks"]: r["wall_s"] for r in results if r["servers"] == 1}
    if one.get(1000) and one.get(4000):
        print(f"\ntime(4,000) / time(1,000) on one server: {one[4000] / one[1000]:.2f} (target <= 5)")
    (WORK / "wide.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
