"""The executor pool actor: the pykka shell of ExecutorCore. Its bodies run where the composition root says (worker
threads in a real server, virtual time in the simulator); their outcomes go to the lease manager together, in one
Returned message for each message of the pool's that ended bodies.

Returns are gathered at both hops: a body's thread adds its outcome to a list and tells the pool only when the
list was empty, and the pool tells the lease manager once for all it took. Told one by one, each quick task woke
the pool's thread and the lease manager's, and each wake-up took the interpreter's lock (the GIL) in turn."""

import threading
from collections.abc import Callable
from typing import Any, Protocol

import pykka

from actorbatch.actors.messages import Abort, Execute, Finished, Returned, Tick, tell
from actorbatch.actors.outages import Failing, rides_out_outages
from actorbatch.actors.timer import Timer
from actorbatch.behaviours.leasing import Key
from actorbatch.node.execute import TIMEOUT, Bodies, ExecutorCore
from actorbatch.node.lease import Done


class PoolBodies(Bodies, Protocol):
    def ship(self) -> None:
        """Send the run-log lines the running bodies wrote since the last time."""

    def stop(self) -> None:
        """The pool stops: drop the bodies not started yet."""


SHIP_S = 0.5  # how often running bodies' log lines are shipped
# Builds a pool's bodies, given how they report a return (`Done`) and a timeout (the attempt's key).
MakeBodies = Callable[[Callable[[Done], None], Callable[[Key], None]], PoolBodies]


class ExecutorPool(pykka.ThreadingActor):
    """Ticks only while bodies run: each tick ships their log lines; an idle pool costs nothing."""

    def __init__(self, store: Failing, bodies: MakeBodies, manager: pykka.ActorRef[Any], timer: Timer) -> None:
        super().__init__()
        self.store, self.timer = store, timer  # the store: where an outage while shipping logs is noted
        self.manager = manager
        self._returns: list[Done] = []  # from the bodies' threads, under the lock
        self._lock = threading.Lock()
        self._outcomes: list[Done | Key] = []  # for the lease manager, told after each message
        self.bodies = bodies(self._finished, self._timed_out)
        self.core = ExecutorCore(self.bodies, self._outcomes.append)
        self._ticking = False

    @rides_out_outages
    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Execute):
            for attempt in message.attempts:
                self.core.execute(attempt)
            if not self._ticking:
                self._ticking = True
                self.timer.after(SHIP_S, self.actor_ref, Tick())
        elif isinstance(message, Abort):
            self.core.abort(message.key, message.reason)
        elif isinstance(message, Finished):
            with self._lock:
                returns, self._returns = self._returns, []
            for done in returns:
                self.core.finished(done)
        elif isinstance(message, Tick):
            self.bodies.ship()
            self._ticking = bool(self.core.running)
            if self._ticking:
                self.timer.after(SHIP_S, self.actor_ref, Tick())
        if self._outcomes:
            tell(self.manager, Returned(tuple(self._outcomes)))
            self._outcomes.clear()
        return None

    def _finished(self, done: Done) -> None:
        """From a body's thread: the pool may have stopped meanwhile."""
        with self._lock:
            first = not self._returns
            self._returns.append(done)
        if first:
            tell(self.actor_ref, Finished())

    def _timed_out(self, key: Key) -> None:
        tell(self.actor_ref, Abort(key, TIMEOUT))

    def on_failure(self, *args: Any) -> None:
        self.bodies.stop()

    def on_stop(self) -> None:
        self.bodies.stop()
