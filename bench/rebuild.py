"""`actorbatch projections rebuild` on a log of --events events (issue target: ≥ 100,000 events/s).

    python -m bench.rebuild [--events 200000] [--dir /dev/shm] [--repeats 3] [--store FILE]

Builds a SQLite store the way `bench.as_of` does (runs submitted, claimed and finished a thousand at a time, with
heartbeats), then rebuilds its read models in this process `--repeats` times and prints the events per second of
CPU time and of wall time (medians), how often the progress callback fired (the bar's steps) and the longest wait
between two of its steps. `--store FILE`
keeps the store in FILE and reuses it when it exists (to compare two versions on the same log).
"""

import cProfile
import itertools
import statistics
import tempfile
import time

import actorbatch
from bench.as_of import busy_day, busy_day_arguments


def main() -> None:
    parser = busy_day_arguments(__doc__, 200_000, 3)
    parser.add_argument("--profile", help="write a cProfile of the last rebuild to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        url = busy_day(args, folder, "rebuild.db")
        cpu_rates, wall_rates, steps, gaps = [], [], [], []
        for repeat in range(args.repeats):
            with actorbatch.connect(url, user="bench") as client:
                ticks: list[float] = []
                profile = None
                if args.profile and repeat == args.repeats - 1:
                    profile = cProfile.Profile()
                    profile.enable()
                wall, cpu = time.perf_counter(), time.process_time()
                started = wall
                count = client.rebuild_projections(lambda _done, _total, t=ticks: t.append(time.perf_counter()))
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                if profile is not None:
                    profile.disable()
                    profile.dump_stats(args.profile)
            cpu_rates.append(count / cpu)
            wall_rates.append(count / wall)
            steps.append(len(ticks))
            moments = [started, *ticks, started + wall]
            gaps.append(max(b - a for a, b in itertools.pairwise(moments)))
        print(f"rebuild of {count:,} events: {statistics.median(cpu_rates):,.0f} events/s of CPU time, "
              f"{statistics.median(wall_rates):,.0f} events/s of wall time (medians of {args.repeats}); "
              f"progress steps: {statistics.median(steps):.0f}, longest wait between two (start and end "
              f"included): {statistics.median(gaps):.2f} s")


if __name__ == "__main__":
    main()
