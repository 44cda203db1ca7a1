"""No false suspicion: an attempt is declared lost only if the process that held it stopped honouring its lease;
and an attempt's outcome is recorded only by the process that held it (no other can know it).

A holder that ran the whole time since its claim (the same incarnation still up, never paused) beats every third
of a lease timeout, store permitting: no other server may reap its attempt, or the task is retried while it runs,
or (a claim whose reply an outage swallowed, reaped before its holder could settle it) never runs attempt 1 at all.
After an outage the servers notice the store is back one by one, each at its breaker's next probe: the judges must
wait for the slowest.
"""

from collections.abc import Callable, Sequence
from uuid import UUID

from actorbatch.domain.events import Event
from actorbatch.domain.runs import AttemptLost, TaskClaimed, TaskFailed, TaskSucceeded
from simulations.checkers import CheckFailed
from simulations.eventloop import Loop, us

CHECKER = "no-false-suspicion"
HOLDER = "outcome-by-holder"


class Suspicions:
    """`running(writer)`: whether that incarnation is still up; `paused_since(server, at_us)`: whether the server
    was paused at any moment from `at_us` on."""

    def __init__(self, loop: Loop, running: Callable[[str], bool], paused_since: Callable[[str, int], bool]) -> None:
        self.loop, self.running, self.paused_since = loop, running, paused_since
        self._claims: dict[tuple[UUID, str, int], tuple[str, int]] = {}  # attempt -> (holder's writer, when)

    def appended(self, events: Sequence[Event], writer: str) -> None:
        for event in events:
            if isinstance(event, TaskClaimed):
                self._claims[(event.originator_id, event.task, event.attempt)] = (writer, self.loop.now_us)
            elif isinstance(event, TaskSucceeded | TaskFailed):
                holder, _ = self._claims.pop((event.originator_id, event.task, event.attempt), ("", 0))
                if holder and holder != writer:
                    raise CheckFailed(HOLDER, f"run {event.originator_id}, task {event.task}: the outcome of attempt "
                                      f"{event.attempt} was recorded by {writer}, but {holder} held it",
                                      self.loop.now)
            elif isinstance(event, AttemptLost):
                holder, since_us = self._claims.pop((event.originator_id, event.task, event.attempt), ("", 0))
                if holder and self.running(holder) and not self.paused_since(holder.split("#")[0], since_us):
                    raise CheckFailed(CHECKER, f"run {event.originator_id}, task {event.task}: attempt "
                                      f"{event.attempt} declared lost by {writer}, but {holder} has held it without "
                                      f"a pause since its claim {(self.loop.now_us - since_us) / us(1):g}s ago",
                                      self.loop.now)
