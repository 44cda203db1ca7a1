"""The simulator's actor runtime: the product's pykka actors, run without threads.

An actor is built as pykka builds it, then given an inbox whose every message schedules one delivery on the event
loop; a delivery is what pykka's actor loop does with a message (handle it, answer an ask, or, if the handler
raises one of the faults the simulation injects, log the failure and stop the actor). So the simulated server runs
the real actors' code, message by message, in an order the seed decides. Any other exception is a bug the
simulation reports, not a failure it lets the server survive.
"""

import sys
from collections import deque
from collections.abc import Callable
from typing import Any, cast

import pykka
from pykka import messages


class LoopInbox:
    """What pykka's refs put messages into: a queue whose `put` also asks for a delivery."""

    def __init__(self, wake: Callable[[], None]) -> None:
        self.envelopes: deque[Any] = deque()
        self.wake = wake

    def put(self, envelope: Any, block: bool = True, timeout: float | None = None) -> None:
        self.envelopes.append(envelope)
        self.wake()

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        return self.envelopes.popleft()

    def empty(self) -> bool:
        return not self.envelopes


Faults = tuple[type[Exception], ...]


def spawn(actor_class: type[pykka.Actor], args: tuple[Any, ...], soon: Callable[[Callable[[], None]], None],
          died: Callable[[], None], faults: Faults) -> pykka.Actor:
    """Build an actor whose messages are delivered by `soon` (one loop step each); `died` hears it stopped (by a
    stop, or by one of the injected `faults`)."""
    actor = actor_class(*args)
    early, inbox = actor.actor_inbox, LoopInbox(lambda: soon(lambda: deliver(actor, died, faults)))
    actor.actor_inbox = actor.actor_ref.actor_inbox = cast(Any, inbox)
    while not early.empty():  # told something while it was being built
        inbox.put(early.get())
    return actor


def deliver(actor: pykka.Actor, died: Callable[[], None], faults: Faults) -> None:
    """Handle the actor's next message, as pykka's actor loop does."""
    if actor.actor_stopped.is_set():
        return
    envelope = actor.actor_inbox.get()
    try:
        response = actor._handle_receive(envelope.message)
        if envelope.reply_to is not None:
            envelope.reply_to.set(response)
    except faults:  # as pykka: an actor whose handler raises is logged and stopped
        if envelope.reply_to is not None:
            envelope.reply_to.set_exception()
        else:
            actor._handle_failure(*sys.exc_info())
            actor.on_failure(*sys.exc_info())
    if actor.actor_stopped.is_set() or isinstance(envelope.message, messages._ActorStop):
        died()
