"""Helpers to run real `actorbatch server start` processes in tests."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def start_server(url: str, name: str, threads: int = 2, lease_timeout_s: float = 2.0,
                 log: Path | None = None, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """`actorbatch server start` in a child process; `env`: variables to set besides the environment's."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - the child gets its own copy
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "actorbatch", "--db", url, "server", "start", "--name", name,
             "--threads", str(threads), "--lease-timeout", str(lease_timeout_s)],
            env=env, stdout=out, stderr=out)
    finally:
        if log:
            out.close()


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.02)


def stop(proc: subprocess.Popen[bytes], timeout_s: float = 30) -> int:
    """SIGTERM (drain) and wait; returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=timeout_s)


def kill9(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
