"""The lease manager's own cost per task: a backlog of one-task runs drained through `LeaseCore` alone, on one
thread, with the real SQLite event store; no actors, no worker threads, no bodies (each claimed attempt is
reported done at once). What is left is folding each run, claiming it, recording the claim and the outcome.

    python -m bench.lease_core [--runs 20000] [--dir /dev/shm] [--repeats 3] [--gc default|server] [--profile FILE]

`--gc server` sets the garbage collector as `server start` does (`cli.common.collect_seldom`). It prints the
CPU time per task of each repeat and their median. Measured with CPU time, so a busy machine moves it less than
wall time; compare versions one right after the other.
"""

import argparse
import cProfile
import gc
import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import actorbatch
from actorbatch.behaviours.leasing import Attempt, LeaseBehaviour
from actorbatch.behaviours.scheduling import ScheduleBehaviour
from actorbatch.cli.common import collect_seldom
from actorbatch.clock import SystemClock
from actorbatch.domain.jobfile import parse_job
from actorbatch.node.boot import register, seed
from actorbatch.node.lease import Done, LeaseCore
from actorbatch.store.eventstore import EventStore


class Outbox:
    """The core's outbox: attempts to run are kept, to be reported done at once."""

    def __init__(self) -> None:
        self.attempts: list[Attempt] = []
        self.wanted = False

    def execute(self, attempts: Sequence[Attempt]) -> None:
        self.attempts.extend(attempts)

    def abort(self, attempt: Attempt, reason: str) -> None:
        raise AssertionError(f"{attempt.key} aborted: {reason}")

    def wake_at(self, when: datetime) -> None:
        pass

    def again(self) -> None:
        self.wanted = True

    def read(self) -> None:  # the log is read whole before every step here: the step is all that is asked
        self.wanted = True

    def fail(self, reason: str) -> None:
        raise AssertionError(reason)


def backlog(url: str, runs: int) -> None:
    actorbatch.init(url)
    with actorbatch.connect(url, user="bench") as client:
        client.add_job(parse_job({"name": "noop", "tasks": [{"name": "t", "run": "actorbatch.examples:noop"}]}))
        client.run_many("noop", ({"i": i} for i in range(runs)))


def drain(url: str, threads: int = 2) -> tuple[int, float]:
    """Tasks drained and CPU seconds taken."""
    clock, outbox = SystemClock(), Outbox()
    store = EventStore(url)
    server = register(store, "bench", ("default",), threads, 30.0, "bench", 1, clock.now())
    behaviour = LeaseBehaviour("bench", ("default",), 30.0)
    seed(behaviour, ScheduleBehaviour(clock.now()), server, [], [], [], [])
    core = LeaseCore(behaviour, server, store, outbox, lambda _: threads, clock.now, lambda _: None)
    store.listen(lambda events: None)  # as a server's node does: own appends are not read back
    started, position, done = time.process_time(), 0, 0
    while True:
        position, events, read = store.follow(position, 2000)
        if events:
            core.observed(events)
        while outbox.wanted or outbox.attempts:
            outbox.wanted = False
            core.step(clock.now())
            attempts, outbox.attempts = outbox.attempts, []
            for attempt in attempts:
                core.report(Done(attempt, None, elapsed_s=0.0001))
            done += len(attempts)
        if not read:
            break
    elapsed = time.process_time() - started
    store.close()
    return done, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--dir", default=None, help="folder of the store (default: a temporary one)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--gc", choices=("default", "server"), default="server")
    parser.add_argument("--profile", help="write a cProfile of the last repeat to this file")
    args = parser.parse_args()
    if args.gc == "server":
        collect_seldom()
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        source = Path(folder) / "backlog.db"
        backlog(f"sqlite:///{source}", args.runs)
        figures = []
        for repeat in range(args.repeats):
            copy = Path(folder) / f"drain{repeat}.db"
            copy.write_bytes(source.read_bytes())
            profile = cProfile.Profile() if args.profile and repeat == args.repeats - 1 else None
            if profile:
                profile.enable()
            done, cpu_s = drain(f"sqlite:///{copy}")
            if profile:
                profile.disable()
                profile.dump_stats(args.profile)
            assert done == args.runs, f"drained {done} of {args.runs}"
            figures.append(cpu_s * 1e6 / done)
            print(f"repeat {repeat + 1}: {figures[-1]:.1f} us of CPU per task")
            gc.collect()
    print(f"lease core, {args.runs} one-task runs, gc {args.gc}: median {statistics.median(figures):.1f} us of CPU "
          f"per task ({', '.join(f'{f:.1f}' for f in figures)})")


if __name__ == "__main__":
    main()
