"""Shell command bodies: run as a child that dies with its server, output streamed into the run log."""

import contextlib
import ctypes
import functools
import json
import os
import pwd
import shutil
import signal
import subprocess
import threading
from collections.abc import Sequence
from typing import Any

from actorbatch.runners.context import TaskContext
from actorbatch.runners.python import TaskError

GRACE_S = 5.0
SECRETS = ("ACTORBATCH_DB", "ACTORBATCH_SIGNING_KEY", "ACTORBATCH_SMTP_URL", "PGPASSWORD")  # not for other users
_PR_SET_PDEATHSIG = 1
# The command runs under a small shell in its own process group. When the server dies the kernel sends that shell
# SIGHUP (see die_with_parent), and it kills the whole group: the command and whatever the command started.
_GUARD = ["sh", "-c", 'trap "kill -KILL 0" HUP; "$@" & wait $!', "actorbatch-task"]


def die_with_parent(parent_pid: int, signum: int = signal.SIGKILL) -> None:
    """In a child, before exec: have the kernel send `signum` when the server dies, so no orphan outlives its
    lease; and if the server died already (between fork and here), leave at once."""
    with contextlib.suppress(OSError):  # not Linux: the lease timeout still ends the attempt
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signum)
    if os.getppid() != parent_pid:
        os._exit(1)


def run_shell(command: Sequence[str], ctx: TaskContext, timeout_s: float | None, os_user: str | None = None
              ) -> None:
    """Run the command (as `os_user`, if given); raises TaskError with the exit status unless it exits 0."""
    env = {**os.environ, "ACTORBATCH_RUN_ID": str(ctx.run_id), "ACTORBATCH_JOB": ctx.job,
           "ACTORBATCH_TASK": ctx.task, "ACTORBATCH_ATTEMPT": str(ctx.attempt), "ACTORBATCH_USER": ctx.user,
           "ACTORBATCH_PARAMS": json.dumps(dict(ctx.params), default=str)}
    identity: dict[str, Any] = {}
    if os_user is not None:
        identity = _as_os_user(os_user, env)
    if shutil.which(command[0], path=env.get("PATH")) is None:
        raise TaskError(f"cannot start {command[0]}: not found or not executable")
    proc = subprocess.Popen([*_GUARD, *command], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True, **identity,
                            preexec_fn=functools.partial(die_with_parent, os.getpid(), signal.SIGHUP),  # noqa: PLW1509
                            text=True, errors="replace")
    exited = threading.Event()
    threading.Thread(target=_pump, args=(proc, ctx, exited), daemon=True).start()
    stopped = _wait(proc, ctx, timeout_s, exited)
    if stopped:
        raise TaskError(stopped)
    code = proc.returncode
    if code < 0 or 128 < code <= 128 + 64:  # the guard reports a command killed by signal N as 128 + N
        number = -code if code < 0 else code - 128
        with contextlib.suppress(ValueError):
            raise TaskError(f"killed by signal {signal.Signals(number).name}")
    if proc.returncode != 0:
        raise TaskError(f"exit code {proc.returncode}")


def _as_os_user(name: str, env: dict[str, str]) -> dict[str, Any]:
    """Popen's arguments that run the child as OS user `name`, its groups and home; the server's secrets are taken
    out of `env` (that user is not the server). TaskError if this server cannot (it is not root, no such user)."""
    if os.geteuid() != 0:
        raise TaskError(f"cannot run as OS user {name}: the server does not run as root")
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise TaskError(f"cannot run as OS user {name}: no such user") from None
    for secret in SECRETS:
        env.pop(secret, None)
    env.update(HOME=entry.pw_dir, USER=name, LOGNAME=name)
    home = entry.pw_dir if os.path.isdir(entry.pw_dir) else "/"
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": os.getgrouplist(name, entry.pw_gid),
            "cwd": home}


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
