"""How an actor rides out a store outage, the same way in every actor of a server.

The store's breaker logs the outage once and makes calls fail fast while it lasts; an actor's handler that meets
StoreUnavailable just ends there, having kept whatever it could not write, and tries again on its next tick.
A store that cannot write at all (StoreFailed: disk full, read-only) is noted on the store, without a traceback;
the supervisor sees it and stops the whole server with that one line (`BatchServer.failure`).
"""

import functools
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

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
