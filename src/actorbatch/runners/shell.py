"""Shell command bodies: run as a child that dies with its server, output streamed into the run log."""

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import threading
from collections.abc import Sequence

from actorbatch.runners.context import TaskContext
from actorbatch.runners.python import TaskError

GRACE_S = 5.0
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In the child: ask the kernel to SIGKILL us when the server dies, so no orphan outlives its lease."""
    with contextlib.suppress(OSError):  # not Linux: the lease timeout still ends the attempt
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def run_shell(command: Sequence[str], ctx: TaskContext, timeout_s: float | None) -> None:
    """Run the command; raises TaskError with the exit status unless it exits 0."""
    env = {**os.environ, "ACTORBATCH_RUN_ID": str(ctx.run_id), "ACTORBATCH_JOB": ctx.job,
           "ACTORBATCH_TASK": ctx.task, "ACTORBATCH_ATTEMPT": str(ctx.attempt), "ACTORBATCH_USER": ctx.user,
           "ACTORBATCH_PARAMS": json.dumps(dict(ctx.params), default=str)}
    try:
        proc = subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True,
                                preexec_fn=die_with_parent,  # noqa: PLW1509 - only prctl, async-signal-safe
                                text=True, errors="replace")
    except OSError as error:
        raise TaskError(f"cannot start {command[0]}: {error.strerror}") from None
    exited = threading.Event()
    threading.Thread(target=_pump, args=(proc, ctx, exited), daemon=True).start()
    stopped = _wait(proc, ctx, timeout_s, exited)
    if stopped:
        raise TaskError(stopped)
    if proc.returncode < 0:
        raise TaskError(f"killed by signal {signal.Signals(-proc.returncode).name}")
    if proc.returncode != 0:
        raise TaskError(f"exit code {proc.returncode}")


def _pump(proc: subprocess.Popen[str], ctx: TaskContext, exited: threading.Event) -> None:
    assert proc.stdout is not None
    with proc.stdout:
        for line in proc.stdout:
            ctx.log.write(line.rstrip("\n"))
    proc.wait()
    exited.set()


def _wait(proc: subprocess.Popen[str], ctx: TaskContext, timeout_s: float | None,
          exited: threading.Event) -> str | None:
    """Wait for exit; on timeout or cancellation stop the process group (SIGTERM, then SIGKILL) and say why."""
    waited = 0.0
    while True:
        if exited.wait(timeout=0.05):
            return None
        waited += 0.05
        reason = "cancelled" if ctx.cancelled() else (
            f"timeout after {timeout_s:g}s" if timeout_s is not None and waited >= timeout_s else None)
        if reason:
            _stop(proc)
            return reason


def _stop(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=GRACE_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass
