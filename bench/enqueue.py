"""Submitting runs through the Python API: one run per call, and many in one call (issue targets: per call at
least half of huey's enqueue rate; `run_many` at least 50,000 runs/s).

    python -m bench.enqueue [--runs 5000] [--bulk 20000] [--dir /dev/shm] [--repeats 3] [--profile FILE]

Each repeat uses a fresh SQLite store in `--dir` (tmpfs: the CPU's cost, not the disk's): a one-task job is added,
200 warm-up runs are submitted, then `--runs` runs one per `run_job` call, the same with an idempotency key each,
and `--bulk` runs in one `run_many` call. If huey is installed, its enqueue (`SqliteHuey`, one task per call, the
peer benchmark's setup) is measured in the same repeat, right after, on a fresh file in the same folder. Prints runs
per second of wall time and of CPU time (medians), and the ratios to huey.
"""

import argparse
import cProfile
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import actorbatch

JOB = 'name = "noop1"\n[[tasks]]\nname = "t"\nrun = "bench.tasks:noop"\n'
WARM_UP = 200


def timed(work: Callable[[], Any], count: int) -> tuple[float, float]:
    """(count per second of wall time, of CPU time) of one call of `work`."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return count / wall, count / max(cpu, 1e-9)


def actorbatch_rates(folder: Path, runs: int, bulk: int, profile: cProfile.Profile | None
                     ) -> dict[str, tuple[float, float]]:
    url = f"sqlite:///{folder / 'enqueue.db'}"
    actorbatch.init(url)
    job = folder / "job.toml"
    job.write_text(JOB)
    found: dict[str, tuple[float, float]] = {}
    with actorbatch.connect(url, user="bench") as client:
        client.add_job(actorbatch.Job.from_toml(job))
        for i in range(WARM_UP):
            client.run_job("noop1", params={"i": i})
        if profile is not None:
            profile.enable()

        def one_per_call() -> None:
            for i in range(runs):
                client.run_job("noop1", params={"i": i})

        def keyed() -> None:
            for i in range(runs):
                client.run_job("noop1", params={"i": i}, key=f"k{i}")

        found["run_job"] = timed(one_per_call, runs)
        found["run_job key"] = timed(keyed, runs)
        found["run_many"] = timed(lambda: client.run_many("noop1", ({"i": i} for i in range(bulk))), bulk)
        if profile is not None:
            profile.disable()
    return found


def huey_rate(folder: Path, runs: int) -> tuple[float, float] | None:
    try:
        from huey import SqliteHuey
    except ImportError:
        return None
    huey = SqliteHuey("bench", filename=str(folder / "huey.db"))

    @huey.task()
    def noop(i: int) -> None:
        pass

    for i in range(WARM_UP):
        noop(i)

    def enqueue() -> None:
        for i in range(runs):
            noop(i)

    rate = timed(enqueue, runs)
    huey.storage.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5000, help="runs submitted one per call")
    parser.add_argument("--bulk", type=int, default=20_000, help="runs submitted in one run_many call")
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="where the stores go (tmpfs: /dev/shm)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", help="write a cProfile of the last repeat's actorbatch part to this file")
    args = parser.parse_args()
    rates: dict[str, list[tuple[float, float]]] = {}
    for repeat in range(args.repeats):
        profile = cProfile.Profile() if args.profile and repeat == args.repeats - 1 else None
        with tempfile.TemporaryDirectory(dir=args.dir) as name:
            for label, rate in actorbatch_rates(Path(name), args.runs, args.bulk, profile).items():
                rates.setdefault(label, []).append(rate)
            huey = huey_rate(Path(name), args.runs)
            if huey is not None:
                rates.setdefault("huey", []).append(huey)
        if profile is not None:
            profile.dump_stats(args.profile)
    print(f"load average {os.getloadavg()[0]:.2f}; medians of {args.repeats}, runs/s")
    print(f"{'':14} {'wall':>9} {'CPU':>9}   wall runs/s of each repeat")
    medians = {}
    for label, found in rates.items():
        wall, cpu = statistics.median(r[0] for r in found), statistics.median(r[1] for r in found)
        medians[label] = (wall, cpu)
        print(f"{label:14} {wall:9,.0f} {cpu:9,.0f}   {', '.join(f'{r[0]:,.0f}' for r in found)}")
    if "huey" in medians:
        huey_wall, huey_cpu = medians["huey"]
        for label in ("run_job", "run_job key"):
            wall, cpu = medians[label]
            print(f"{label} / huey: {wall / huey_wall:.2f} of wall time, {cpu / huey_cpu:.2f} of CPU time "
                  "(target: 0.5)")
    else:
        print("huey is not installed: no ratios (pip install huey==3.5.4)")
    print(f"run_many: {medians['run_many'][0]:,.0f} runs/s of wall time (target: 50,000)")


if __name__ == "__main__":
    main()
