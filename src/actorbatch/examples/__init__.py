"""Task bodies for demos and tests: `actorbatch.examples:noop`, `:sleep`, `:fail`, `:echo`."""

import time
from typing import Any

from actorbatch.runners.context import TaskContext


def noop(ctx: TaskContext) -> None:
    """Does nothing: measures the framework, not the work."""


def sleep(ctx: TaskContext) -> float:
    """Sleeps `seconds` (default 1), waking early if cancelled."""
    seconds = float(ctx.params.get("seconds", 1))
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0 and not ctx.cancelled():
        time.sleep(min(left, 0.05))
    return seconds


def fail(ctx: TaskContext) -> None:
    """Always fails, with `message` as the exit status."""
    raise RuntimeError(str(ctx.params.get("message", "failed on purpose")))


def echo(ctx: TaskContext) -> dict[str, Any]:
    """Logs its parameters and returns them."""
    for key, value in sorted(ctx.params.items()):
        ctx.log.info("%s = %s", key, value)
    return dict(ctx.params)


def step(ctx: TaskContext) -> str:
    """Logs that the task ran; fails if the task's name is in the `fail` parameter (a list of task names)."""
    failing = ctx.params.get("fail", [])
    ctx.log.info("%s of job %s, attempt %d", ctx.task, ctx.job, ctx.attempt)
    if ctx.task in failing:
        raise RuntimeError(f"{ctx.task} failed: it is listed in the `fail` parameter")
    return ctx.task
