"""`status --as-of` on a log of a million events (DESIGN §4: ≤ 1 s).

    python -m bench.as_of [--events 1000000] [--dir /dev/shm] [--repeats 3]

Builds a SQLite store whose log holds --events events, the way a busy day writes them: runs submitted a thousand at a
time, each claimed by a server while the next thousand are submitted and finished while the thousand after that
are, with the server's heartbeats in between; the read models follow the log as a server's would (a catch-up after
each step). Then times `Client.status(as_of=...)` in this process, and `actorbatch status --as-of ... --json` as a
fresh process, at moments spread over the day, and checks each shows runs running then. Prints medians of the
wall time and of the CPU time (on a busy machine the second says more).
"""

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import actorbatch
from actorbatch.clock import ManualClock
from actorbatch.domain.jobfile import parse_job
from actorbatch.domain.runs import TaskClaimed, TaskSucceeded
from actorbatch.domain.servers import Server
from actorbatch.projections.rows import iso

CHUNK = 1000  # runs per step
START = datetime(2026, 12, 1, tzinfo=UTC)


def build(url: str, events: int, catch_up_every: int = 1) -> list[datetime]:
    """Write the log; returns the moments to look back at."""
    actorbatch.init(url)
    clock = ManualClock(START)
    with actorbatch.connect(url, user="bench", clock=clock) as client:
        client.add_job(parse_job({"name": "pay", "tasks": [{"name": "t", "run": "m:f"}]}))
        server = Server()
        started = server.start("bench", ("default",), 8, 30.0, "host", 1, clock.now())
        server.apply(started)
        client.store.append(started)
        claimed: list[UUID] = []
        submitted: list[UUID] = []
        written = steps = 0
        while written < events:
            step_started = time.monotonic()
            now = clock.now()
            done = [TaskSucceeded(originator_id=r, originator_version=3, timestamp=now, task="t", attempt=1,
                                  result=None) for r in claimed]
            claims = [TaskClaimed(originator_id=r, originator_version=2, timestamp=now, task="t", attempt=1,
                                  server="bench", starts_at=now, lease_until=now + timedelta(seconds=30))
                      for r in submitted]
            beat = server.heartbeat(len(claims), now)
            server.apply(beat)
            client.store.append(*done, *claims, beat)
            clock.advance(1)
            claimed, submitted = [c.originator_id for c in claims], client.run_many("pay", [None] * CHUNK)
            clock.advance(1)
            written += len(done) + len(claims) + 1 + CHUNK
            steps += 1
            if steps % catch_up_every == 0:
                client.views.catch_up()
            if written // 100_000 != (written - CHUNK * 3) // 100_000:
                print(f"  {written:,} events ({time.monotonic() - step_started:.2f} s per step)", flush=True)
        client.views.catch_up()
        end = clock.now()
    return [START + (end - START) * share for share in (0.1, 0.3, 0.5, 0.7, 0.9, 0.999)]


def busy_day_arguments(doc: str, events: int, repeats: int) -> argparse.ArgumentParser:
    """The options of a benchmark on the log `build` writes, kept in `--store FILE` if given."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--events", type=int, default=events)
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="where to build the store (tmpfs: /dev/shm)")
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--store", help="a SQLite file to keep the store in, reused if it exists")
    return parser


def busy_day(args: argparse.Namespace, folder: str, name: str) -> str:
    """The URL of the store of `busy_day_arguments`: `--store` if it exists, else built there (or in `folder`)."""
    path = Path(args.store) if args.store else Path(folder) / name
    url = f"sqlite:///{path}"
    if not path.exists():
        build(url, args.events, catch_up_every=50)
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="where to build the store (tmpfs: /dev/shm)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--catch-up-every", type=int, default=1,
                        help="steps between catch-ups of the read models (1: as a server follows the log)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        url = f"sqlite:///{Path(folder) / 'as-of.db'}"
        started = time.monotonic()
        moments = build(url, args.events, args.catch_up_every)
        with actorbatch.connect(url, user="bench") as client:
            head = client.store.head()
            snapshots = client.views.db.query("SELECT COUNT(*) FROM ab_snapshots")[0][0]
        print(f"log: {head:,} events, {snapshots} snapshots, built in {time.monotonic() - started:.0f} s")
        in_process: list[tuple[float, float]] = []
        fresh: list[tuple[float, float]] = []
        for moment in moments:
            for _ in range(args.repeats):
                with actorbatch.connect(url, user="bench") as client:
                    wall, cpu = time.perf_counter(), time.process_time()
                    screen = client.status(as_of=moment)
                    in_process.append((time.perf_counter() - wall, time.process_time() - cpu))
                assert screen["runs"] and screen["running_tasks"], moment  # mid-day: runs were running
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            wall = time.perf_counter()
            subprocess.run([sys.executable, "-m", "actorbatch", "--db", url, "status", "--as-of", iso(moment) or "",
                            "--json"], check=True, stdout=subprocess.DEVNULL)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            fresh.append((time.perf_counter() - wall,
                          after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime))
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall = time.perf_counter()
        subprocess.run([sys.executable, "-m", "actorbatch", "--version"], check=True, stdout=subprocess.DEVNULL)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        report("actorbatch --version, for the start of a process alone",
               [(time.perf_counter() - wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)])
        report("status(as_of=...) in process", in_process)
        report("actorbatch status --as-of, a fresh process each (target 1000 ms)", fresh)


def report(what: str, figures: list[tuple[float, float]]) -> None:
    walls, cpus = [w * 1000 for w, _ in figures], [c * 1000 for _, c in figures]
    print(f"{what}: wall median {statistics.median(walls):.0f} ms (max {max(walls):.0f}), "
          f"CPU median {statistics.median(cpus):.0f} ms (max {max(cpus):.0f}), {len(figures)} looks")

if __name__ == "__main__":
    main()
