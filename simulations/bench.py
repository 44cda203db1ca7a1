"""`python -m simulations.bench`: every figure of DESIGN §4 beside its target, in one table.

    python -m simulations.bench [--reuse] [--db sqlite] [--db postgresql://...] [--repeats 3] [--no-schedules]

A thin aggregator. The peers' workloads (W1-W4) and the projection rebuild come from `python -m bench.run`, run
here once per --db (or, with --reuse, read from the bench/results.json it wrote before); the scheduler's figures
come from bench/schedules.py (100,000 scheduled jobs in one ScheduleBehaviour); the simulation's own figure is one
simulated day of 10 servers and 10,000 jobs (scenarios/day.toml), timed here.
"""

import argparse
import json
import operator
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from actorbatch.clock import monotonic_s
from simulations.scenario import load_scenario
from simulations.simulator import Simulation

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
DAY = Path(__file__).resolve().parent / "scenarios" / "day.toml"
SCHEDULED_JOBS = 100_000
SCALING = [1_000, 10_000, 100_000]
FIRES = 150_000
OPS: dict[str, Callable[[float, float], bool]] = {">=": operator.ge, "<=": operator.le, "==": operator.eq}

Row = tuple[str, float | None, str | None, float | None]  # measure, value, comparison, target


def workload(results: dict[str, Any], store: str, label: str, figure: str) -> float | None:
    """The median of a figure of bench.run's results, or None if that workload was not measured."""
    value = results.get(store, {}).get("workloads", {}).get(label, {}).get("median", {}).get(figure)
    return float(value) if value is not None else None


def bench_rows(results: dict[str, Any]) -> list[Row]:
    lease_s = float(results.get("sqlite", {}).get("lease_timeout_s", 3.0))
    w1, w2a, w2b, w4 = ("W1 throughput, threads=4", "W2a latency, submitted in another process",
                        "W2b latency, same process", "W4 recovery after kill -9")
    return [
        ("end-to-end no-op tasks/s, one server, SQLite", workload(results, "sqlite", w1, "e2e_per_s"), ">=", 10_000),
        ("due -> task started, same process, p99 ms", workload(results, "sqlite", w2b, "p99_ms"), "<=", 2),
        ("other process -> started, SQLite, p99 ms", workload(results, "sqlite", w2a, "p99_ms"), "<=", 100),
        ("other process -> started, PostgreSQL, p99 ms", workload(results, "postgresql", w2a, "p99_ms"), "<=", 20),
        ("end-to-end tasks/s, PostgreSQL", workload(results, "postgresql", w1, "e2e_per_s"), ">=", 2_600),
        ("commits per task, PostgreSQL", workload(results, "postgresql", w1, "commits_per_task"), None, None),
        ("kill -9 mid-run: runs lost", workload(results, "sqlite", w4, "lost"), "==", 0),
        ("kill -9 mid-run: recovered within s", workload(results, "sqlite", w4, "inflight_rerun_s"), "<=",
         lease_s + 1),
        ("rebuild all projections, events/s", workload(results, "sqlite", w1, "rebuild_events_per_s"), ">=", 100_000),
    ]


def schedule_rows() -> list[Row]:
    from bench.schedules import memory_and_cost, scaling

    memory = memory_and_cost(SCHEDULED_JOBS, FIRES)
    rows = scaling(SCALING, FIRES)
    growth = rows[-1][1] / rows[0][1]  # O(log n): x100 jobs adds a few µs; O(n) would multiply by 100
    return [("100,000 scheduled jobs: RSS MB", memory["rss_loaded_mb"], "<=", 300),
            ("100,000 scheduled jobs: µs per fire", memory["us_per_fire"], None, None),
            (f"µs per fire at {SCALING[-1]:,} / at {SCALING[0]:,} jobs (O(log n))", growth, "<=", 2)]


def simulation_rows(seed: int) -> list[Row]:
    config = load_scenario(DAY, seed)
    started = monotonic_s()
    result = Simulation(config).run()
    wall_s = monotonic_s() - started
    checks = 0.0 if result.failure is None else 1.0
    return [("simulated day of 10 servers, 10,000 jobs: wall s", wall_s, "<=", 60),
            ("simulated day: failed checks", checks, "==", 0)]


def table(rows: list[Row]) -> str:
    lines = [f"{'measure (DESIGN §4)':<58} {'value':>12} {'target':>12}"]
    for measure, value, op, target in rows:
        shown = "not measured" if value is None else f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"
        goal = "" if op is None or target is None else f"{op} {target:,g}"
        verdict = "" if op is None or target is None or value is None else (
            "ok" if OPS[op](value, target) else "MISS")
        lines.append(f"{measure:<58} {shown:>12} {goal:>12}  {verdict}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulations.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--reuse", action="store_true", help="read bench/results.json instead of running bench.run")
    parser.add_argument("--db", action="append", help="bench.run's --db, once per store (default: sqlite)")
    parser.add_argument("--repeats", type=int, default=3, help="bench.run's --repeats")
    parser.add_argument("--no-schedules", action="store_true", help="skip bench/schedules.py's figures")
    parser.add_argument("--seed", type=int, default=1, help="of the simulated day")
    args = parser.parse_args(argv)
    if not args.reuse:
        for db in args.db or ["sqlite"]:
            subprocess.run([sys.executable, "-m", "bench.run", "--db", db, "--repeats", str(args.repeats)],
                           cwd=ROOT, check=True)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    rows = bench_rows(results)
    if not args.no_schedules:
        rows += schedule_rows()
    rows += simulation_rows(args.seed)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
