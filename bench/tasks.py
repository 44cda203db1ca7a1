"""Task bodies of the benchmark. Each appends one line `kind id time ...` to the event log named by
$ACTORBATCH_BENCH_LOG, as the peers' jobs do (../shared/peers/_common.py beside the project), so completion,
duplicates and latency are measured at the moment a body runs, the same way for actorbatch as for every peer."""

import os
import time

from actorbatch import TaskContext

LOG_ENV = "ACTORBATCH_BENCH_LOG"
_fds: dict[str, int] = {}


def wall() -> float:
    """Unix time: the bodies and the driver run in different processes, so they must share the wall clock."""
    return time.time()  # noqa: TID251 - measuring real time across processes, not deciding with it


def log_event(*fields: object) -> None:
    """One line per call, written with O_APPEND so concurrent writers never interleave (a few µs)."""
    path = os.environ[LOG_ENV]
    fd = _fds.get(path)
    if fd is None:
        fd = _fds[path] = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, (" ".join(map(str, fields)) + "\n").encode())


def noop(ctx: TaskContext) -> None:
    log_event("D", ctx.params["i"], wall())


def warm(ctx: TaskContext) -> None:
    log_event("X", "warm", wall())


def at(ctx: TaskContext) -> None:
    log_event("L", ctx.params["i"], wall(), ctx.params["due"])


def step_a(ctx: TaskContext) -> None:
    log_event("A", ctx.params["i"], wall())


def step_b(ctx: TaskContext) -> None:
    log_event("B", ctx.params["i"], wall())


def sleeper(ctx: TaskContext) -> None:
    log_event("S", ctx.params["i"], wall())
    time.sleep(ctx.params["secs"])
    log_event("E", ctx.params["i"], wall())


def wide(ctx: TaskContext) -> None:
    log_event("T", ctx.task, wall())
