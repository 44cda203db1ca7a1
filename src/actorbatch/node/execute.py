"""The executor's step: which attempts run, what a timeout or an abort means, how each outcome reaches the lease core.

A real pool runs bodies on worker threads, the simulator in virtual time; both implement `Bodies` and hand this
core the same calls, so timeouts, cancellations and late returns are decided once.
"""

from collections.abc import Callable
from typing import Protocol

from actorbatch.behaviours.leasing import Attempt, Key
from actorbatch.node.lease import Done

TIMEOUT = "timeout"  # the reason of the abort a body's timeout brings


class Bodies(Protocol):
    """Where bodies run: run one (it calls `ExecutorCore.finished` when it returns), ask one to stop, and bring
    `ExecutorCore.abort(key, TIMEOUT)` after a delay."""

    def run(self, attempt: Attempt) -> None: ...

    def cancel(self, attempt: Attempt) -> None:
        """The body's `ctx.cancelled()` turns true; a cooperative body returns."""

    def time_out(self, attempt: Attempt, after_s: float) -> None: ...


class ExecutorCore:
    """The attempts one server executes; `report` hands Done (an attempt ended) or a Key (the thread of a
    timed-out attempt came back) to the lease core."""

    def __init__(self, bodies: Bodies, report: Callable[[Done | Key], None]) -> None:
        self.bodies, self.report = bodies, report
        self.running: dict[Key, Attempt] = {}
        self._reported: set[Key] = set()  # timed out: reported already, its thread still busy

    def execute(self, attempt: Attempt) -> None:
        self.running[attempt.key] = attempt
        self.bodies.run(attempt)
        if attempt.run is not None and attempt.timeout_s is not None:  # a command's runner enforces its own
            self.bodies.time_out(attempt, attempt.timeout_s)

    def abort(self, key: Key, reason: str) -> None:
        """Stop an attempt: its run was cancelled, its lease lost, or its time is up."""
        attempt = self.running.get(key)
        if attempt is None or key in self._reported:
            return
        if reason == TIMEOUT and attempt.run is not None and attempt.timeout_s is not None:
            # A python body cannot be killed: report the timeout now, keep its thread counted until it returns.
            self._reported.add(key)
            self.report(Done(attempt, f"timeout after {attempt.timeout_s:g}s", freed=False))
        self.bodies.cancel(attempt)

    def finished(self, done: Done) -> None:
        """A body returned."""
        key = done.attempt.key
        self.running.pop(key, None)
        if key in self._reported:
            self._reported.discard(key)
            self.report(key)
        else:
            self.report(done)
