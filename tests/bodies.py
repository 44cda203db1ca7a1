"""Task bodies for tests that run real server processes: they leave marker files a test can check."""

import os
import sys
import time
from pathlib import Path

from actorbatch import TaskContext


def marker(ctx: TaskContext) -> None:
    """Write `<task>.<attempt>.start` (time, server pid), sleep `seconds`, then write `<task>.<attempt>.end`."""
    folder = Path(ctx.params["dir"])
    stem = f"{ctx.task}.{ctx.attempt}"
    _write(folder / f"{stem}.start", f"{time.time()} {os.getpid()}")
    deadline = time.monotonic() + float(ctx.params.get("seconds", 0))
    while time.monotonic() < deadline and not ctx.cancelled():
        time.sleep(0.01)
    _write(folder / f"{stem}.end", f"{time.time()} {os.getpid()}")


def _write(path: Path, text: str) -> None:
    """Atomically, so a test polling the folder never reads half a file."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    partial.rename(path)


def stubborn(ctx: TaskContext) -> str:
    """Ignores cancellation for `seconds`: a python body cannot be killed, only asked."""
    time.sleep(float(ctx.params.get("seconds", 1)))
    return "done anyway"


def flaky(ctx: TaskContext) -> int:
    """Fails until attempt `succeed_on`."""
    if ctx.attempt < int(ctx.params["succeed_on"]):
        raise RuntimeError(f"attempt {ctx.attempt} fails")
    return ctx.attempt


def chatty(ctx: TaskContext) -> None:
    for i in range(int(ctx.params["lines"])):
        ctx.log.info("line %d", i)


def exits(ctx: TaskContext) -> None:
    """Calls sys.exit, as a script turned into a body might."""
    sys.exit(int(ctx.params.get("code", 3)))


def interrupts(ctx: TaskContext) -> None:
    raise KeyboardInterrupt


def huge(ctx: TaskContext) -> bytes:
    """A result over the documented maximum."""
    return b"x" * int(ctx.params.get("bytes", 5 << 20))


def unencodable(ctx: TaskContext) -> object:
    return object()


def talkative(ctx: TaskContext) -> dict[str, object]:
    """Says things every way a body can: print, sys.stderr, a logger; each line names the task, interleaved with
    whatever runs beside it; raises if `raise` is set."""
    import logging

    me = ctx.task
    for i in range(int(ctx.params.get("lines", 3))):
        print(f"{me} printed {i}")
        print(f"{me} stderr {i}", file=sys.stderr)
        logging.getLogger("tests.talkative").info("%s logged %d", me, i)
        time.sleep(0.005)
    if ctx.params.get("raise"):
        _fail_deep(me)
    return {"task": me, "lines": int(ctx.params.get("lines", 3))}


def _fail_deep(me: str) -> None:
    raise ValueError(f"{me} gave up")


def counted(ctx: TaskContext) -> str:
    """Adds a line to `<dir>/<task>.count` each time it runs; fails while `<dir>/<task>.fail` exists."""
    folder = Path(ctx.params["dir"])
    with (folder / f"{ctx.task}.count").open("a") as count:
        count.write(f"{ctx.run_id}\n")
    if (folder / f"{ctx.task}.fail").exists():
        raise RuntimeError(f"{ctx.task} was told to fail")
    return f"{ctx.task} done"


def whoami(ctx: TaskContext) -> str:
    """The acting user the body was given."""
    return ctx.user
