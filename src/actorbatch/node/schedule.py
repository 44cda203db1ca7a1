"""The scheduler's step: create the runs of fire times on time, racing the other servers' schedulers.

Every event it writes is version 1 of a deterministic id (the run, or the skip, of one fire time), so a conflict
only means another scheduler decided the same thing first. It decides nothing until its server has read the log up
to where it stood at start: the read models it was seeded from may lag, and a job changed while no server ran must
not fire on its old schedule.
"""

from collections.abc import Iterable
from datetime import datetime

from actorbatch.behaviours.scheduling import ScheduleBehaviour
from actorbatch.domain.events import Event
from actorbatch.errors import Conflict, StoreUnavailable
from actorbatch.node.ports import EventLog, Report, Wakeup

RETRY_S = 1.0  # a step an outage cut short is taken again this much later


class ScheduleCore:
    def __init__(self, behaviour: ScheduleBehaviour, log: EventLog, wakeup: Wakeup, problems: Report) -> None:
        self.behaviour, self.log, self.wakeup, self.problems = behaviour, log, wakeup, problems
        self.caught_up = False
        self._pending: list[Event] = []
        self._wake: datetime | None = None

    def observed(self, events: Iterable[Event], now: datetime) -> None:
        for job in self.behaviour.observe(events):
            self._pending.extend(self.behaviour.release(job, now))
        self.problems(self.behaviour.quarantine.take_found())

    def tick(self, now: datetime) -> None:
        """Decide what is due and record it; then sleep until the next fire time."""
        if not self.caught_up:
            return
        events = [*self._pending, *self.behaviour.decide(now)]
        self._pending.clear()
        self.problems(self.behaviour.quarantine.take_found())
        self._append(events)
        wake = self.behaviour.next_wake()
        if wake is not None and wake <= now:
            self.wakeup.wake_at(now)  # a long catch-up goes on after the other messages had their turn
        elif wake is not None and wake != self._wake:
            self._wake = wake
            self.wakeup.wake_at(wake)

    def _append(self, events: list[Event]) -> None:
        """A conflict means another scheduler decided first (or, after an outage, that an append whose reply was
        lost had been recorded). Events the log could not take wait for the next step."""
        if not events:
            return
        try:
            self.log.append(*events)
        except Conflict:
            for i, event in enumerate(events):
                try:
                    self.log.append(event)
                except Conflict:
                    continue
                except StoreUnavailable:
                    self._pending.extend(events[i:])
                    raise
        except StoreUnavailable:
            self._pending.extend(events)
            raise
