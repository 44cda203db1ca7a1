"""The read models kept by a child process (`actorbatch projections follow`) beside a batch server: on another core,
restarted with backoff if it dies, and reaped, never left defunct."""

import functools
import logging
import os
import subprocess
import sys

from actorbatch.clock import monotonic_s
from actorbatch.runners.shell import die_with_parent
from actorbatch.store.outage import CAP_S, FIRST_S

log = logging.getLogger(__name__)
HEALTHY_RUN_S = 60.0  # a projector child that ran this long before dying is restarted without delay
PROJECTOR_NICE = 10  # the read models may lag (every read catches them up first); claims and outcomes may not


def _projector_child(server_pid: int) -> None:
    """In the projector child before it runs: die with the server, and leave the CPU to it when both want it."""
    die_with_parent(server_pid)
    os.nice(PROJECTOR_NICE)


class ProjectorProcess:
    """The read models kept by a child process (`projections follow`), on another core; restarted with backoff
    if it dies, and reaped, never left defunct."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._delay_s = FIRST_S
        self._restart_at_s: float | None = None
        self._spawn()

    def _spawn(self) -> None:
        self._started_s = monotonic_s()
        # The URL (which may hold a password) goes by the environment, never argv, which `ps` shows everyone;
        # the child acts as the user the store vouches for.
        env = {k: v for k, v in os.environ.items() if k != "ACTORBATCH_USER"} | {"ACTORBATCH_DB": self.url}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "actorbatch", "projections", "follow"], env=env,
            preexec_fn=functools.partial(_projector_child, os.getpid()))  # noqa: PLW1509 - prctl, getppid, nice

    def tend(self) -> None:
        code = self._process.poll()
        if code is None:
            return
        now = monotonic_s()
        if self._restart_at_s is None:
            if now - self._started_s > HEALTHY_RUN_S:
                self._delay_s = FIRST_S
            self._restart_at_s = now + self._delay_s
            log.warning("projector process exited with code %s; restarting it in %.1f s", code, self._delay_s)
            self._delay_s = min(self._delay_s * 2, CAP_S)
        elif now >= self._restart_at_s:
            self._restart_at_s = None
            self._spawn()

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait()
