"""Benchmark the scheduler: 100,000 scheduled jobs in one ScheduleBehaviour, and fire latency on a real server.

    python -m bench.schedules [--jobs 100000] [--fires 150000] [--real-jobs 2000] [--real-seconds 10] [--no-real]

1. Memory: load --jobs scheduled jobs (a mix of every, daily, cron and weekly rules in three time zones) into ONE
   ScheduleBehaviour, as a server seeds its scheduler from the job events; print the RSS after loading.
2. Cost per fire: drive that behaviour in virtual time (no store, no threads: the clock is a value) from one fire
   time to the next and divide the wall time spent in decide() by the number of fire times it handled (at least
   --fires). decide() pops the heap, checks the entry, builds the RunCreated and pushes the job's next fire time.
3. Scaling: the same measure with 1k, 10k and 100k jobs of one steady rule family (`every`, 60..600 s, random
   anchors), so only the job count changes: O(log n) per fire means a flat line.
4. Latency on a real store: --real-jobs `every = "2s"` jobs (anchors spread over the 2 s) on an in-process
   BatchServer on SQLite for --real-seconds; latency = RunCreated timestamp (when the scheduler decided) - fire time.

DESIGN §4 targets: O(log n) per fire; RSS <= 300 MB for 100,000 jobs.
"""

import argparse
import gc
import math
import os
import random
import resource
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

from actorbatch.behaviours.scheduling import ScheduleBehaviour
from actorbatch.domain.events import Event, job_id
from actorbatch.domain.jobfile import parse_job
from actorbatch.domain.jobs import JobAdded
from actorbatch.domain.runs import FireSkipped, RunCreated

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # virtual time starts here
ZONES = ("UTC", "Europe/Berlin", "America/New_York")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CHUNK = 5000


# ---------------------------------------------------------------- jobs
def mixed_rule(i: int, rng: random.Random) -> dict[str, Any]:
    """Every fourth job of each kind: every (60 s .. 1 h), daily, cron, weekly; zones in turn."""
    zone = ZONES[i % len(ZONES)]
    kind = i % 4
    if kind == 0:
        return {"every": f"{rng.randrange(60, 3600)}s"}
    if kind == 1:
        return {"daily": f"{rng.randrange(24):02d}:{rng.randrange(60):02d}", "timezone": zone}
    if kind == 2:
        minute, hours = rng.randrange(60), rng.choice(["*", "8-18", "*/2", "0-6,20-23"])
        return {"cron": f"{minute}/{rng.choice([5, 10, 15, 20, 30])} {hours} * * {rng.choice(['*', 'mon-fri'])}",
                "timezone": zone}
    days = sorted(rng.sample(range(7), rng.randrange(1, 4)))
    return {"weekly": {"days": [WEEKDAYS[d] for d in days], "at": f"{rng.randrange(24):02d}:{rng.randrange(60):02d}"},
            "timezone": zone}


def every_rule(i: int, rng: random.Random) -> dict[str, Any]:
    return {"every": f"{rng.randrange(60, 600)}s", "start": (T0 + timedelta(seconds=rng.randrange(600))).isoformat()}


def job_events(n: int, rule: Any, seed: int = 1) -> Iterator[list[Event]]:
    """JobAdded events for n jobs, in chunks; overlap `allow`, so every fire time creates a run."""
    rng = random.Random(seed)  # noqa: S311 - a seeded workload, not a secret
    chunk: list[Event] = []
    for i in range(n):
        name = f"job-{i:06d}"
        definition = parse_job({"name": name, "schedule": {**rule(i, rng), "overlap": "allow"},
                                "tasks": [{"name": "t", "run": "actorbatch.examples:noop"}]})
        chunk.append(JobAdded(originator_id=job_id(name), originator_version=1, timestamp=T0,
                              definition=definition.to_dict(), user="bench"))
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def load(n: int, rule: Any) -> ScheduleBehaviour:
    behaviour = ScheduleBehaviour(T0)
    for chunk in job_events(n, rule):
        behaviour.observe(chunk)
    return behaviour


# ---------------------------------------------------------------- memory
def rss_mb() -> float:
    """Resident set size now (Linux /proc), else the peak from getrusage."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return peak_rss_mb()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# ---------------------------------------------------------------- virtual time
def drive(behaviour: ScheduleBehaviour, min_fires: int) -> tuple[int, float, datetime]:
    """Step from fire time to fire time until `min_fires` were handled; returns fires, seconds in decide(), end."""
    fires, spent, now = 0, 0.0, T0
    clock = time.perf_counter
    gc.collect()
    gc.disable()  # no collector pauses inside the timed calls; the events decided are freed by reference counting
    try:
        while fires < min_fires:
            wake = behaviour.next_wake()
            if wake is None:
                break
            now = wake
            started = clock()
            events = behaviour.decide(now)
            spent += clock() - started
            fires += sum(1 for e in events if isinstance(e, RunCreated | FireSkipped))
    finally:
        gc.enable()
    return fires, spent, now


def memory_and_cost(n: int, min_fires: int) -> dict[str, float]:
    gc.collect()
    base = rss_mb()
    started = time.perf_counter()
    behaviour = load(n, mixed_rule)
    load_s = time.perf_counter() - started
    gc.collect()
    loaded = rss_mb()
    fires, spent, end = drive(behaviour, min_fires)
    hours = (end - T0).total_seconds() / 3600
    result = {"jobs": n, "load_s": load_s, "rss_base_mb": base, "rss_loaded_mb": loaded, "rss_jobs_mb": loaded - base,
              "fires": fires, "virtual_hours": hours, "us_per_fire": spent / fires * 1e6,
              "rss_after_fires_mb": rss_mb(), "peak_rss_mb": peak_rss_mb(), "heap": len(behaviour._heap)}
    del behaviour
    gc.collect()
    return result


def scaling(sizes: list[int], min_fires: int, repeats: int = 3) -> list[tuple[int, float, list[float]]]:
    """Median µs per fire of `every` jobs for each job count."""
    rows = []
    for n in sizes:
        samples = []
        for _ in range(repeats):
            behaviour = load(n, every_rule)
            fires, spent, _ = drive(behaviour, min_fires)
            samples.append(spent / fires * 1e6)
            del behaviour
            gc.collect()
        rows.append((n, statistics.median(samples), samples))
    return rows


# ---------------------------------------------------------------- a real server
def real_latency(n: int, seconds: float) -> dict[str, Any]:
    import actorbatch
    from actorbatch.actors.server import BatchServer, ServerConfig

    folder = Path(tempfile.mkdtemp(prefix="actorbatch-bench-schedules-"))
    url = f"sqlite:///{folder / 'actorbatch.db'}"
    actorbatch.init(url)
    rng = random.Random(2)  # noqa: S311 - a seeded workload, not a secret
    with actorbatch.connect(url, user="bench") as client:
        server = BatchServer(url, ServerConfig(name="bench", threads=4, lease_timeout_s=10, projector="off"))
        server.start()
        try:
            start = client.clock.now() + timedelta(seconds=2)  # every job's anchor: spread over one interval
            client.add_jobs(parse_job({"name": f"tick-{i:05d}", "schedule": {
                "every": "2s", "start": (start + timedelta(seconds=rng.uniform(0, 2))).isoformat()},
                "tasks": [{"name": "t", "run": "actorbatch.examples:noop"}]}) for i in range(n))
            window_end = start + timedelta(seconds=seconds)
            time.sleep(max(0.0, (window_end - client.clock.now()).total_seconds()) + 1.0)
        finally:
            server.stop(drain=True)
        late = []
        position = 0
        while True:
            batch = client.store.read(position, 50_000)
            if not batch:
                break
            position = batch[-1][0]
            late += [(e.timestamp - e.fire_time).total_seconds() * 1000 for _, e in batch
                     if isinstance(e, RunCreated) and e.fire_time is not None and e.fire_time <= window_end]
        skipped = sum(1 for _, e in client.store.read(0, 10**7) if isinstance(e, FireSkipped))
    late.sort()
    expected = n * seconds / 2
    return {"jobs": n, "seconds": seconds, "runs": len(late), "expected": expected, "skipped": skipped,
            "p50_ms": percentile(late, 50), "p99_ms": percentile(late, 99), "max_ms": late[-1] if late else None}


def percentile(sorted_values: list[float], p: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, round(p / 100 * (len(sorted_values) - 1)))]


# ---------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--fires", type=int, default=150_000, help="fire times to time decide() over (>= 100k)")
    parser.add_argument("--scaling", default="1000,10000,100000", help="job counts for the O(log n) check")
    parser.add_argument("--real-jobs", type=int, default=2000)
    parser.add_argument("--real-seconds", type=float, default=10.0)
    parser.add_argument("--no-real", action="store_true", help="skip the real SQLite server run")
    args = parser.parse_args()

    print(f"1-2. {args.jobs:,} scheduled jobs (every/daily/cron/weekly, 3 zones) in one ScheduleBehaviour")
    m = memory_and_cost(args.jobs, args.fires)
    print(f"   load: {m['load_s']:.1f} s ({m['load_s'] / m['jobs'] * 1e6:.0f} µs per job)")
    print(f"   RSS before loading {m['rss_base_mb']:.0f} MB, after loading {m['rss_loaded_mb']:.0f} MB "
          f"(the jobs: {m['rss_jobs_mb']:.0f} MB, {m['rss_jobs_mb'] * 2**20 / m['jobs']:.0f} B per job); "
          f"peak {m['peak_rss_mb']:.0f} MB   [target <= 300 MB]  "
          f"{'OK' if m['rss_loaded_mb'] <= 300 else 'OVER'}")
    print(f"   decide(): {m['us_per_fire']:.1f} µs per fire over {m['fires']:,} fires "
          f"({m['virtual_hours']:.1f} virtual hours; heap {m['heap']:,} entries)")

    sizes = [int(s) for s in args.scaling.split(",") if s]
    print(f"3. scaling, `every` jobs, median of 3, >= {args.fires:,} fires each:")
    rows = scaling(sizes, args.fires)
    for n, median, samples in rows:
        print(f"   {n:>7,} jobs: {median:6.1f} µs per fire   ({', '.join(f'{s:.1f}' for s in samples)})")
    if len(rows) > 1:
        ratio, jobs_ratio = rows[-1][1] / rows[0][1], rows[-1][0] / rows[0][0]
        steps = ", ".join(f"{b[1] - a[1]:+.1f} µs for x{b[0] / a[0]:g}" for a, b in pairwise(rows))
        # O(log n): each x10 jobs adds about the same few µs; O(n) would multiply the cost by the job ratio
        verdict = "OK (logarithmic)" if ratio < 1 + math.log10(jobs_ratio) / 2 else "GROWS faster than log n"
        print(f"   {rows[-1][0]:,} / {rows[0][0]:,} jobs: x{ratio:.2f} per fire for x{jobs_ratio:g} jobs ({steps}) "
              f"[target O(log n)]  {verdict}")

    if not args.no_real:
        print(f"4. {args.real_jobs:,} `every = 2s` jobs on an in-process BatchServer (SQLite) for "
              f"{args.real_seconds:g} s:")
        r = real_latency(args.real_jobs, args.real_seconds)
        print(f"   runs {r['runs']:,} of ~{r['expected']:,.0f} fire times, fires skipped {r['skipped']}; "
              f"due -> run created p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, max {r['max_ms']:.1f} ms")


if __name__ == "__main__":
    main()
