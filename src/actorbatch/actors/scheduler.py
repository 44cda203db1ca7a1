"""The scheduler actor: the I/O shell around ScheduleBehaviour. It creates the runs of scheduled jobs on time.

Each server runs one; they race, and the deterministic run ids let the store keep exactly one run per fire time.
"""

from datetime import datetime
from typing import Any

import pykka

from actorbatch.actors.messages import CaughtUp, Observed, Tick
from actorbatch.actors.outages import rides_out_outages
from actorbatch.actors.timer import Timer
from actorbatch.behaviours.scheduling import ScheduleBehaviour
from actorbatch.clock import Clock
from actorbatch.domain.events import Event
from actorbatch.errors import Conflict, StoreUnavailable
from actorbatch.store.eventstore import EventStore


class Scheduler(pykka.ThreadingActor):
    def __init__(self, behaviour: ScheduleBehaviour, store: EventStore, clock: Clock, timer: Timer) -> None:
        super().__init__()
        self.behaviour, self.store, self.clock, self.timer = behaviour, store, clock, timer
        self._pending: list[Event] = []
        self._wake: datetime | None = None
        # The read models it was seeded from may lag the log: decide nothing until the follower has caught up,
        # or a job changed while no server ran would fire on its old schedule.
        self._caught_up = False

    @rides_out_outages
    def on_receive(self, message: Any) -> Any:
        if isinstance(message, CaughtUp):
            self._caught_up = True
        elif isinstance(message, Observed):
            now = self.clock.now()
            for job in self.behaviour.observe(message.events):
                self._pending.extend(self.behaviour.release(job, now))
        if self.actor_inbox.empty():
            self._step()
        return None

    def _step(self) -> None:
        if not self._caught_up:
            return
        events = [*self._pending, *self.behaviour.decide(self.clock.now())]
        self._pending.clear()
        self._append(events)
        wake = self.behaviour.next_wake()
        if wake is not None and wake <= self.clock.now():
            self.actor_ref.tell(Tick())  # a long catch-up goes on after the other messages had their turn
        elif wake is not None and wake != self._wake:
            self._wake = wake
            self.timer.at(wake, self.actor_ref, Tick())

    def _append(self, events: list[Event]) -> None:
        """Every event is version 1 of its own id: a conflict only means another scheduler decided first (or,
        after an outage, that an append whose reply was lost had been recorded). Events the store could not
        take wait in `_pending` for the next step."""
        if not events:
            return
        try:
            self.store.append(*events)
        except Conflict:
            for i, event in enumerate(events):
                try:
                    self.store.append(event)
                except Conflict:
                    continue
                except StoreUnavailable:
                    self._pending.extend(events[i:])
                    raise
        except StoreUnavailable:
            self._pending.extend(events)
            raise
