"""The log follower actor: reads the notification log from a position and tells the subscribers what is new.

This is how a server hears other processes. Events its own process writes reach the subscribers at once through the
store's listeners, so the poll interval bounds only the latency of work submitted elsewhere.
"""

from collections.abc import Sequence
from typing import Any

import pykka

from actorbatch.actors.messages import CaughtUp, Observed, Poll
from actorbatch.store.eventstore import EventStore

BATCH = 2000


class Follower(pykka.ThreadingActor):
    def __init__(self, store: EventStore, position: int, subscribers: Sequence[pykka.ActorRef[Any]]) -> None:
        super().__init__()
        self.store, self.position, self.subscribers = store, position, list(subscribers)
        self._caught_up = False

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Poll) and self.actor_inbox.empty():
            self.position, events, read = self.store.follow(self.position, BATCH)
            if events:
                for subscriber in self.subscribers:
                    subscriber.tell(Observed(events))
            if read == BATCH:
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
        self.views = views

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Poll) and self.actor_inbox.empty():
            self.views.catch_up()
        return None
