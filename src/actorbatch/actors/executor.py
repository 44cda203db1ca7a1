"""The executor pool actor: the pykka shell of ExecutorCore. Its bodies run where the composition root says (worker
threads in a real server, virtual time in the simulator); every outcome goes to the lease manager as a Done (or
Freed) message."""

from collections.abc import Callable
from typing import Any, Protocol

import pykka

from actorbatch.actors.messages import Abort, Execute, Finished, Freed, Tick, tell
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
        self.bodies = bodies(self._finished, self._timed_out)
        self.core = ExecutorCore(self.bodies, lambda m: tell(manager, m if isinstance(m, Done) else Freed(m)))
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
            self.core.finished(message.done)
        elif isinstance(message, Tick):
            self.bodies.ship()
            self._ticking = bool(self.core.running)
            if self._ticking:
                self.timer.after(SHIP_S, self.actor_ref, Tick())
        return None

    def _finished(self, done: Done) -> None:
        tell(self.actor_ref, Finished(done))  # from a body's thread: the pool may have stopped meanwhile

    def _timed_out(self, key: Key) -> None:
        tell(self.actor_ref, Abort(key, TIMEOUT))

    def on_failure(self, *args: Any) -> None:
        self.bodies.stop()

    def on_stop(self) -> None:
        self.bodies.stop()
