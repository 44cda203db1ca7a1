"""Running for years: a big store pruned to its archive, and a server's start after a year of heartbeats.

    python -m bench.retention [--events 1000000] [--heartbeats 1051200]

Part 1 writes a SQLite store of `--events` events: one-task runs of four events each (created, claimed,
succeeded or failed, one run-log batch), 90% of them finished 60 days ago and 10% an hour ago, and brings the read
models up to date. It then times `history prune` with the default policy, and reports the live log before and
after, the archive, `audit verify` over live log and archive, and the listings (medians of 5).

Part 2 starts real `actorbatch server start` processes (projector off) on two stores: one fresh, one where a server
of the same name already heartbeated `--heartbeats` times (1,051,200: a year at one every 30 s, i.e.
`--lease-timeout 90`), read models up to date. It reports each start's time to "started" and its RSS then; and
the same after `history prune` archived the superseded heartbeats.
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid5

import actorbatch
from actorbatch import maintenance
from actorbatch.clock import SystemClock
from actorbatch.domain.events import log_id
from actorbatch.domain.jobfile import parse_job
from actorbatch.domain.runs import LogWritten, Run
from actorbatch.node.boot import register
from actorbatch.store.eventstore import EventStore

ROOT = Path(__file__).resolve().parent.parent
NS = UUID(int=2026)
BATCH = 2_000  # runs per append


def ms(action: Callable[[], Any], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def write_runs(url: str, events: int) -> None:
    """`events` / 4 finished one-task runs: 90% succeeded 60 days ago, the rest an hour ago (half of these
    failed)."""
    now = SystemClock().now()
    with actorbatch.connect(url, user="bench") as client:
        job = parse_job({"name": "nightly", "tasks": [{"name": "t", "run": "actorbatch.examples:noop"}]})
        client.add_job(job)
    store = EventStore(url)
    runs = events // 4
    pending: list[Any] = []
    for i in range(runs):
        at = now - (timedelta(days=60) if i % 10 else timedelta(hours=1)) + timedelta(milliseconds=i)
        run_id = uuid5(NS, str(i))
        run = Run()
        run.apply(created := Run.create(run_id, job, 1, {}, "bench", at, at))
        run.apply(claimed := run.claim("t", "old-server", at, 30.0))
        failed = i % 20 == 0  # among the recent runs: failed runs are kept 180 days
        ended = run.finish("t", 1, at + timedelta(seconds=1), exit_status="failed" if failed else None)
        logged = LogWritten(originator_id=log_id(run_id, "t", 1), originator_version=1, timestamp=at, run_id=run_id,
                            task="t", attempt=1, lines=("INFO: done",), times=(at,))
        pending += [created, claimed, ended, logged]
        if len(pending) >= 4 * BATCH:
            store.append(*pending)
            pending = []
    store.append(*pending)
    store.close()


def part_one(folder: Path, events: int) -> None:
    url = f"sqlite:///{folder / 'big.db'}"
    actorbatch.init(url)
    started = time.perf_counter()
    write_runs(url, events)
    print(f"wrote {events:,} events in {time.perf_counter() - started:.0f}s", flush=True)
    client = actorbatch.connect(url, user="bench")
    started = time.perf_counter()
    client.views.catch_up()
    print(f"read models caught up in {time.perf_counter() - started:.0f}s", flush=True)
    size = os.path.getsize(folder / "big.db")
    before = {"run list": ms(lambda: client.runs(limit=100)),
              "run list --status failed": ms(lambda: client.runs(status="failed", limit=100)),
              "job list": ms(client.jobs), "server list": ms(client.servers)}
    started = time.perf_counter()
    outcome = maintenance.prune(client)
    prune_s = time.perf_counter() - started
    moved = outcome["events"] + outcome["heartbeats"]
    print(f"prune: {prune_s:.1f}s, runs {outcome['runs']}, {moved:,} events archived; live log "
          f"{outcome['live_events']:,} events ({outcome['live_events'] / (outcome['live_events'] + moved):.1%} "
          f"of before), archive {outcome['archived_events']:,}", flush=True)
    started = time.perf_counter()
    verified = client.verify()
    print(f"audit verify over live + archive: ok={verified['ok']}, {verified['events']:,} events, "
          f"{time.perf_counter() - started:.1f}s", flush=True)
    after = {"run list": ms(lambda: client.runs(limit=100)),
             "run list --status failed": ms(lambda: client.runs(status="failed", limit=100)),
             "job list": ms(client.jobs), "server list": ms(client.servers)}
    for name, then in before.items():
        print(f"{name}: {then:.1f} ms before the prune, {after[name]:.1f} ms after", flush=True)
    started = time.perf_counter()
    upkeep = maintenance.upkeep(client)
    print(f"upkeep {time.perf_counter() - started:.1f}s ({', '.join(s['outcome'] for s in upkeep)}); file "
          f"{size / 2**20:.0f} MiB before the prune, {os.path.getsize(folder / 'big.db') / 2**20:.0f} MiB after",
          flush=True)
    client.close()


def beat_for_a_year(url: str, heartbeats: int) -> None:
    store = EventStore(url)
    clock_at = SystemClock().now() - timedelta(seconds=30 * heartbeats)
    server = register(store, "worker", ["default"], 2, 90.0, socket.gethostname(), 1, clock_at)
    pending = []
    for _ in range(heartbeats):
        clock_at += timedelta(seconds=30)
        beat = server.heartbeat(0, clock_at)
        server.apply(beat)
        pending.append(beat)
        if len(pending) >= 10_000:
            store.append(*pending)
            pending = []
    store.append(*pending, server.stop("drained", clock_at))
    store.close()


def start_server(url: str) -> tuple[float, float]:
    """Seconds from launch to the server saying it started, and its RSS (MiB) then."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "actorbatch", "--db", url, "server", "start", "--name", "worker",
                             "--lease-timeout", "90", "--projector", "off"], stderr=subprocess.PIPE, text=True,
                            cwd=ROOT)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    elapsed = time.perf_counter() - started
    assert "started" in line, line
    rss_kib = next(int(x.split()[1]) for x in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
                   if x.startswith("VmRSS"))
    proc.terminate()
    proc.wait(timeout=60)
    return elapsed, rss_kib / 1024


def part_two(folder: Path, heartbeats: int) -> None:
    fresh, old = f"sqlite:///{folder / 'fresh.db'}", f"sqlite:///{folder / 'year.db'}"
    for url in (fresh, old):
        actorbatch.init(url)
    started = time.perf_counter()
    beat_for_a_year(old, heartbeats)
    with actorbatch.connect(old, user="bench") as client:
        client.views.catch_up()
    print(f"wrote and projected {heartbeats:,} heartbeats in {time.perf_counter() - started:.0f}s", flush=True)
    for label, url in (("fresh store", fresh), (f"after {heartbeats:,} heartbeats", old)):
        starts = [start_server(url) for _ in range(3)]
        print(f"server start, {label}: {statistics.median(s[0] for s in starts):.2f}s to started, "
              f"RSS {statistics.median(s[1] for s in starts):.0f} MiB", flush=True)
    with actorbatch.connect(old, user="bench") as client:
        outcome = maintenance.prune(client)
    starts = [start_server(old) for _ in range(3)]
    print(f"history prune archived {outcome['heartbeats']:,} heartbeats (live log {outcome['live_events']:,} "
          f"events); server start then: {statistics.median(s[0] for s in starts):.2f}s, "
          f"RSS {statistics.median(s[1] for s in starts):.0f} MiB", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--heartbeats", type=int, default=1_051_200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        part_one(Path(folder), args.events)
        part_two(Path(folder), args.heartbeats)


if __name__ == "__main__":
    main()
