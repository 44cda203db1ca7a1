"""Benchmark load-aware competition for leases: who wins the tasks, with and without `--load-bias`.

    python -m bench.fairness [--db sqlite|postgresql://...] [--biases 0,1] [--repeats 3]

Servers are BatchServers in this process (`--projector off`), each with its own store connection, so they hear
each other only through the log, as separate processes do. Three workloads per bias:

- `split`: three idle servers of 2 threads and one run of 60 independent tasks of 0.10-0.20 s: the tasks each
  server ran.
- `busy`: server `busy` runs 2 long tasks on its 4 threads (load 0.5) while `idle` (4 threads) runs nothing; 20
  runs of one 0.05 s task, each submitted when the previous one ended: the tasks `busy` won.
- `backlog`: the same two servers and one run of 40 tasks of 0.1 s, more than `idle` can start at once: the tasks
  `busy` won (it is the least busy while `idle` runs 4 of 4).

Figures are counts of tasks (shares), never times; each run's counts are printed, then the median.
"""

import argparse
import statistics
import time
from collections import Counter
from typing import Any

import actorbatch
from actorbatch.domain.jobfile import parse_job
from bench.run import WORK, Bench

WIDTH = 60
SHORT_RUNS = 20
BACKLOG = 40


def sleeper(name: str, seconds: list[float]) -> actorbatch.JobDefinition:
    return parse_job({"name": name, "tasks": [
        {"name": f"t{i:02d}", "run": "actorbatch.examples:sleep", "params": {"seconds": s}}
        for i, s in enumerate(seconds)]})


def start(url: str, name: str, bias: float, threads: int = 4) -> actorbatch.BatchServer:
    config = actorbatch.ServerConfig(name=name, threads=threads, lease_timeout_s=5, projector="off", load_bias=bias)
    return actorbatch.BatchServer(url, config).start()


def won(detail: dict[str, Any]) -> Counter[str]:
    return Counter(t["server"] for t in detail["tasks"])


def split(b: Bench, bias: float) -> list[int]:
    ab = b.reset("split")
    ab.add_job(sleeper("wide", [0.1 + 0.01 * (i % 11) for i in range(WIDTH)]))
    servers = [start(b.url, f"s{i}", bias, threads=2) for i in (1, 2, 3)]
    try:
        counts = won(ab.wait(ab.run_job("wide"), timeout=120))
    finally:
        for server in servers:
            server.stop(drain=False)
    return sorted((counts[f"s{i}"] for i in (1, 2, 3)), reverse=True)


def busy(b: Bench, bias: float, backlog: bool = False) -> int:
    ab = b.reset("busy")
    ab.add_job(sleeper("long", [120, 120]))
    ab.add_job(sleeper("short", [0.05]))
    ab.add_job(sleeper("backlog", [0.1] * BACKLOG))
    busy = start(b.url, "busy", bias)
    idle = None
    try:
        long_run = ab.run_job("long")
        while busy.busy() < 2:
            time.sleep(0.02)
        idle = start(b.url, "idle", bias)
        while sum(s["alive"] for s in ab.servers()) < 2:
            time.sleep(0.02)
        counts: Counter[str] = Counter()
        if backlog:
            counts = won(ab.wait(ab.run_job("backlog"), timeout=60))
        for _ in range(0 if backlog else SHORT_RUNS):
            counts += won(ab.wait(ab.run_job("short"), timeout=60))
        ab.cancel(long_run)
    finally:
        for server in (busy, idle):
            if server is not None:
                server.stop(drain=False)
    return counts["busy"]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fairness", description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="sqlite", help="sqlite (a file in the temp folder) or a postgresql:// URL "
                        "whose database is dropped and created for every run")
    parser.add_argument("--biases", default="0,1", help="comma-separated --load-bias values")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    b = Bench(args.db)
    print(f"| store | --load-bias | split: tasks per server of {WIDTH} (largest first) | "
          f"busy: tasks the busy server won of {SHORT_RUNS} | backlog: tasks the busy server won of {BACKLOG} |")
    print("|---|---|---|---|---|")
    try:
        for bias in (float(x) for x in args.biases.split(",")):
            splits = [split(b, bias) for _ in range(args.repeats)]
            busies = [busy(b, bias) for _ in range(args.repeats)]
            backlogs = [busy(b, bias, backlog=True) for _ in range(args.repeats)]
            median = [int(statistics.median(s[i] for s in splits)) for i in range(3)]
            print(f"| {b.kind} | {bias:g} | {'/'.join(map(str, median))} (runs: "
                  f"{', '.join('/'.join(map(str, s)) for s in splits)}) | {int(statistics.median(busies))} "
                  f"(runs: {', '.join(map(str, busies))}) | {int(statistics.median(backlogs))} "
                  f"(runs: {', '.join(map(str, backlogs))}) |", flush=True)
    finally:
        b.close()


if __name__ == "__main__":
    main()
