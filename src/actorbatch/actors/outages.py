"""How an actor rides out a store outage, the same way in every actor of a server.

The store's breaker logs the outage once and makes calls fail fast while it lasts; an actor's handler that meets
StoreUnavailable just ends there, having kept whatever it could not write, and tries again on its next tick (an
actor that otherwise sleeps until its next due moment plans that tick with `Retry`).
A store that cannot write at all (StoreFailed: disk full, read-only) is noted on the store, without a traceback;
the supervisor sees it and stops the whole server with that one line (`BatchServer.failure`).
"""

import functools
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

import pykka

from actorbatch.actors.messages import Tick
from actorbatch.actors.timer import Timer
from actorbatch.errors import StoreFailed, StoreUnavailable


class Failing(Protocol):
    """A store that notes why it cannot write, for the supervisor to see."""

    failure: StoreFailed | None


class _StoreActor(Protocol):
    @property
    def store(self) -> Failing: ...


A = TypeVar("A", bound=_StoreActor)


def rides_out_outages(handler: Callable[[A, Any], Any]) -> Callable[[A, Any], Any]:
    """Wrap an actor's `on_receive`: an outage postpones the work, a failed store is reported to the supervisor."""

    @functools.wraps(handler)
    def on_receive(actor: A, message: Any) -> Any:
        try:
            return handler(actor, message)
        except StoreUnavailable:
            return None  # logged once by the store's breaker; the next tick tries again
        except StoreFailed as error:
            actor.store.failure = actor.store.failure or error
            return None

    return on_receive


class Retry:
    """The tick that takes a step an outage cut short again, `after_s` later; one planned at a time."""

    def __init__(self, timer: Timer, ref: pykka.ActorRef[Any], after_s: float) -> None:
        self.timer, self.ref, self.after_s = timer, ref, after_s
        self._at: datetime | None = None

    def step(self, step: Callable[[datetime], None], now: datetime) -> None:
        """Take `step` at `now`; if an outage cuts it short, plan the retry (the outage passes on to
        `rides_out_outages`)."""
        try:
            step(now)
        except StoreUnavailable:
            self.plan(now)
            raise

    def plan(self, now: datetime) -> None:
        if self._at is None or self._at <= now:
            self._at = now + timedelta(seconds=self.after_s)
            self.timer.at(self._at, self.ref, Tick())
