"""The simulated executor pool of one server: bodies that take virtual time, then report like the real pool.

A real pool runs a body on a thread and tells the lease manager `Done` when it returns; a body that times out is
reported at once (`freed=False`) and its thread counted until it returns (`Freed`); an aborted body (lease lost,
run cancelled) sees `ctx.cancelled()` and returns, reported as `cancelled`. Bodies here are cooperative: they stop
the moment they are aborted or time out. A crash kills them; a pause freezes them, so they end that much later.
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
    timed_out: bool
    token: int


class Executor:
    """The bodies one server runs; `report` hands Done / Freed to its lease manager."""

    def __init__(self, server: str, loop: Loop, bodies: BodyModel, watcher: Watcher,
                 schedule: Callable[[int, Callable[[], None]], None], report: Callable[[Done | Key], None]) -> None:
        self.server, self.loop, self.model, self.watcher = server, loop, bodies, watcher
        self._schedule, self._report = schedule, report
        self.running: dict[Key, Body] = {}
        self._tokens = 0

    def execute(self, attempt: Attempt, starts_us: int) -> None:
        duration_s, exit_status = self.model.outcome(attempt)
        timed_out = attempt.run is not None and attempt.timeout_s is not None and duration_s > attempt.timeout_s
        if timed_out:
            assert attempt.timeout_s is not None
            duration_s, exit_status = attempt.timeout_s, f"timeout after {attempt.timeout_s:g}s"
        self.watcher.started(self.server, attempt)
        self._start(Body(attempt, duration_s, max(starts_us, self.loop.now_us) + us(duration_s), exit_status,
                         timed_out, 0))

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
        if body.timed_out:  # reported at the timeout, then the thread comes back
            self._report(Done(body.attempt, body.exit_status, freed=False, elapsed_s=body.duration_s))
            self._report(key)
        else:
            self._report(Done(body.attempt, body.exit_status, elapsed_s=body.duration_s))

    def abort(self, key: Key) -> None:
        """The lease manager says stop: the body notices at once and returns."""
        body = self.running.pop(key, None)
        if body is not None:
            self.watcher.ended(self.server, body.attempt)
            self._report(Done(body.attempt, "cancelled"))

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
