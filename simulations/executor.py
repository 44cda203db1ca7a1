"""The simulated bodies of one server's executor pool: they take virtual time, then report like worker threads.

What happens to an attempt (a timeout reported at once with its thread still counted, an abort, a late return) is
decided by the real executor actor and its core; here only the bodies are simulated. They are cooperative: told to
stop (aborted, or timed out), they return at once, reported as `cancelled`. A crash kills them; a pause freezes
them, so they end that much later.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from actorbatch.behaviours.leasing import Attempt, Key
from actorbatch.node.lease import Done
from simulations.eventloop import Loop, us
from simulations.profile import attempt_outcome


class BodyModel(Protocol):
    """How long an attempt takes and how it ends (exit status None = success)."""

    def outcome(self, attempt: Attempt) -> tuple[float, str | None]: ...


@dataclass
class ProfiledBodies:
    """Attempts behave as their task's profile says; in the safety phase some are `slow_factor` times slower."""

    rng: random.Random
    slow_p: float = 0.0
    slow_factor: float = 20.0
    faulty: bool = True

    def outcome(self, attempt: Attempt) -> tuple[float, str | None]:
        duration_s, failure = attempt_outcome(attempt.params, attempt.run_id, attempt.task, attempt.attempt)
        if self.faulty and self.slow_p > 0 and self.rng.random() < self.slow_p:
            duration_s *= self.slow_factor
        return duration_s, failure


class Watcher(Protocol):
    """Who must know which attempts are being executed: the at-most-one-live-attempt checker."""

    def started(self, server: str, attempt: Attempt) -> None: ...

    def ended(self, server: str, attempt: Attempt) -> None: ...


@dataclass
class Body:
    attempt: Attempt
    duration_s: float
    ends_us: int
    exit_status: str | None
    token: int


class SimBodies:
    """The bodies one server runs (the real pool's `PoolBodies`): `finished` hears each return, `timed_out` each
    timeout, as the executor actor's callbacks."""

    def __init__(self, server: str, skew_us: int, loop: Loop, bodies: BodyModel, watcher: Watcher,
                 schedule: Callable[[int, Callable[[], None]], None], finished: Callable[[Done], None],
                 timed_out: Callable[[Key], None]) -> None:
        self.server, self.skew_us, self.loop, self.model, self.watcher = server, skew_us, loop, bodies, watcher
        self._schedule, self.finished, self.timed_out = schedule, finished, timed_out
        self.running: dict[Key, Body] = {}
        self._tokens = 0

    def run(self, attempt: Attempt) -> None:
        """The body runs from its start time (claimed a moment early) for as long as its profile says."""
        duration_s, exit_status = self.model.outcome(attempt)
        self.watcher.started(self.server, attempt)
        starts_us = self.loop.to_us(attempt.starts_at) - self.skew_us  # a time on the server's clock
        self._start(Body(attempt, duration_s, max(starts_us, self.loop.now_us) + us(duration_s), exit_status, 0))

    def cancel(self, attempt: Attempt) -> None:
        """Bodies here are cooperative: told to stop, they return at once."""
        body = self.running.pop(attempt.key, None)
        if body is not None:
            self.watcher.ended(self.server, body.attempt)
            self.finished(Done(body.attempt, "cancelled"))

    def time_out(self, attempt: Attempt, after_s: float) -> None:
        self._schedule(self.loop.now_us + us(after_s), lambda: self.timed_out(attempt.key))

    def ship(self) -> None:
        """Simulated bodies write no log lines."""

    def stop(self) -> None:
        """The pool stopped: its process is dying, and `kill` follows."""

    # ---- virtual time ----

    def _start(self, body: Body) -> None:
        self._tokens += 1
        body.token = token = self._tokens
        self.running[body.attempt.key] = body
        self._schedule(body.ends_us, lambda: self._end(body.attempt.key, token))

    def _end(self, key: Key, token: int) -> None:
        body = self.running.get(key)
        if body is None or body.token != token:
            return  # aborted, or moved by a pause
        del self.running[key]
        self.watcher.ended(self.server, body.attempt)
        self.finished(Done(body.attempt, body.exit_status, elapsed_s=body.duration_s))

    def freeze(self, for_us: int) -> None:
        """The process is paused: every body ends `for_us` later than it would have."""
        for body in list(self.running.values()):
            body.ends_us += for_us
            self._start(body)

    def kill(self) -> None:
        """The process died, and its bodies with it: nothing is reported."""
        for body in self.running.values():
            self.watcher.ended(self.server, body.attempt)
        self.running.clear()
