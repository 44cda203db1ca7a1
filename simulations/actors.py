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
from datetime import datetime
from typing import Any, cast

import pykka
from pykka import messages

from actorbatch.actors.timer import Timer
from actorbatch.clock import Clock


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


class Runtime:
    """Runs the actors of one process on the loop: `soon` schedules a step of the process, `died` hears an actor
    stopped (by a stop, or by one of the injected `faults`).

    A message told outside any handler while the process takes a step of its own (a timer's wake, say) waits for
    the end of that step, where `flush` delivers all such messages in an order `shuffle` picks: the actors of a
    real process handle them on their own threads, in whatever order those run. Messages told by a handler are
    delivered in later steps, each actor's in the order they were told."""

    def __init__(self, soon: Callable[[Callable[[], None]], None], died: Callable[[], None], faults: Faults,
                 shuffle: Callable[[list[pykka.Actor]], None] = lambda _: None) -> None:
        self.soon, self.died, self.faults, self.shuffle = soon, died, faults, shuffle
        self.stepping = False  # the process is in a step of its own, outside any handler
        self.delivering = False
        self.closed = False  # the process died: nothing more is delivered
        self._pending: list[pykka.Actor] = []

    def spawn(self, actor_class: type[pykka.Actor], *args: Any) -> pykka.Actor:
        """Build an actor as pykka does, with an inbox that asks this runtime for each delivery."""
        actor = actor_class(*args)
        early, inbox = actor.actor_inbox, LoopInbox(lambda: self._wake(actor))
        actor.actor_inbox = actor.actor_ref.actor_inbox = cast(Any, inbox)
        while not early.empty():  # told something while it was being built
            inbox.put(early.get())
        return actor

    def _wake(self, actor: pykka.Actor) -> None:
        if self.stepping and not self.delivering:
            self._pending.append(actor)
        else:
            self.soon(lambda: self.deliver(actor))

    def flush(self) -> None:
        """The end of a step: deliver what was told outside any handler during it."""
        pending, self._pending = self._pending, []
        if len(pending) > 1:
            self.shuffle(pending)
        for actor in pending:
            self.deliver(actor)

    def deliver(self, actor: pykka.Actor) -> None:
        """Handle the actor's next message, as pykka's actor loop does."""
        if self.closed or actor.actor_stopped.is_set():
            return
        envelope = actor.actor_inbox.get()
        self.delivering = True
        try:
            response = actor._handle_receive(envelope.message)  # what pykka's loop calls
            if envelope.reply_to is not None:
                envelope.reply_to.set(response)
        except self.faults:  # as pykka: an actor whose handler raises is logged and stopped
            if envelope.reply_to is not None:
                envelope.reply_to.set_exception()
            else:
                actor._handle_failure(*sys.exc_info())
                actor.on_failure(*sys.exc_info())
        finally:
            self.delivering = False
        if actor.actor_stopped.is_set() or isinstance(envelope.message, messages._ActorStop):
            self.died()


class LoopTimer(Timer):
    """The real timer's agenda, with the event loop as its sleeper: one wake-up planned at a time, by `at`
    (which runs an action when the process's clock reads a time)."""

    def __init__(self, clock: Clock, at: Callable[[datetime, Callable[[], None]], None]) -> None:
        super().__init__(clock)
        self._at = at
        self._wake_at: datetime | None = None  # when the sleeper is planned to wake
        self._wakes = 0  # names the planned wake; an older one finds itself replaced

    def sooner(self) -> None:
        next_at = self._agenda.next_at()
        if next_at is None or (self._wake_at is not None and self._wake_at <= next_at):
            return
        self._wake_at, self._wakes = next_at, self._wakes + 1
        wake = self._wakes
        self._at(next_at, lambda: self._wake(wake))

    def _wake(self, wake: int) -> None:
        if wake != self._wakes:
            return  # replaced by a sooner wake
        self._wake_at = None
        self.tell_due(self.clock.now())
        self.sooner()
