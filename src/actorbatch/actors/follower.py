"""The log follower actor: reads the notification log from a position and tells the subscribers what is new.

This is how a server hears other processes. Events its own process writes reach the subscribers at once through the
store's listeners, so the poll interval bounds only the latency of work submitted elsewhere.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pykka

from actorbatch.actors.messages import CaughtUp, Observed, Poll
from actorbatch.actors.outages import rides_out_outages
from actorbatch.clock import Clock
from actorbatch.errors import ActorbatchError
from actorbatch.store.eventstore import EventStore

BATCH = 2000
FRESH_S = 0.1  # with nothing new, still say "the log was read up to now" this often: leases are judged by it


class Follower(pykka.ThreadingActor):
    def __init__(self, store: EventStore, position: int, subscribers: Sequence[pykka.ActorRef[Any]],
                 clock: Clock) -> None:
        super().__init__()
        self.store, self.position, self.subscribers, self.clock = store, position, list(subscribers), clock
        self._caught_up = False
        self._told_at: datetime | None = None

    @rides_out_outages
    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Poll) and self.actor_inbox.empty():
            read_at = self.clock.now()
            self.position, events, read = self.store.follow(self.position, BATCH)
            at_head = read < BATCH
            fresh = at_head and (self._told_at is None or (read_at - self._told_at).total_seconds() >= FRESH_S)
            if events or fresh:
                self._told_at = read_at if at_head else self._told_at
                for subscriber in self.subscribers:
                    subscriber.tell(Observed(events, read_at if at_head else None))
            if not at_head:
                self.actor_ref.tell(Poll())
            elif not self._caught_up:
                self._caught_up = True
                for subscriber in self.subscribers:
                    subscriber.tell(CaughtUp())
        return None


class Projector(pykka.ThreadingActor):
    """Keeps the read models close to the log, so listings stay cheap for the CLI."""

    def __init__(self, views: Any) -> None:
        super().__init__()
        self.views, self.store = views, views.store

    @rides_out_outages
    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Poll) and self.actor_inbox.empty():
            try:
                self.views.catch_up()
            except ActorbatchError:
                self.views.forget()
                raise
        return None
