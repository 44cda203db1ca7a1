"""The lease manager actor: the pykka shell around LeaseCore, and the core's outbox.

It turns messages into core calls and steps the core once its inbox is empty, so a burst of outcomes and claims
is recorded in one transaction (one commit for many events). Between messages it sleeps until the core's next due
moment (a step an outage cut short is tried again `retry_s` later): an idle server's lease manager does not tick.
"""

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import pykka

from actorbatch.actors.messages import Abort, Beat, Busy, Connect, Drain, Execute, Freed, Fresh, Observed, Tick, tell
from actorbatch.actors.outages import Retry, rides_out_outages
from actorbatch.actors.ports import NodeStore
from actorbatch.actors.problems import ProblemLog
from actorbatch.actors.timer import Timer
from actorbatch.behaviours.leasing import Attempt, LeaseBehaviour
from actorbatch.clock import Clock
from actorbatch.domain.servers import Server
from actorbatch.node.lease import Done, LeaseCore

log = logging.getLogger(__name__)


class LeaseManager(pykka.ThreadingActor):
    def __init__(self, behaviour: LeaseBehaviour, server: Server, store: NodeStore, clock: Clock, timer: Timer,
                 capacity: Callable[[datetime], int], changes: Callable[[datetime], datetime | None],
                 problems: ProblemLog, retry_s: float) -> None:
        super().__init__()
        self.store, self.clock, self.timer = store, clock, timer
        self.core = LeaseCore(behaviour, server, store, self, capacity, lambda: self._read_at, problems.report,
                              changes=changes)
        self.executor: pykka.ActorRef[Any] | None = None
        self.follower: pykka.ActorRef[Any] | None = None
        self._read_at: datetime | None = None  # from the follower: everything recorded before it has been heard
        self._again = False
        self.retry = Retry(timer, self.actor_ref, retry_s)

    @rides_out_outages
    def on_receive(self, message: Any) -> Any:
        core = self.core
        if isinstance(message, Observed):
            if message.read_at is not None:
                self._read_at = message.read_at
            core.observed(message.events)
        elif isinstance(message, Done):
            core.report(message)
        elif isinstance(message, Freed):
            core.report(message.key)
        elif isinstance(message, Tick):
            core.tick()
        elif isinstance(message, Beat):
            core.heartbeat(self.clock.now())
        elif isinstance(message, Drain):
            core.drain()
        elif isinstance(message, Busy):
            return (len(core.busy), core.behaviour.draining, core.unrecorded)
        elif isinstance(message, Connect):
            self.executor, self.follower = message.executor, message.follower
        if self._again and self.actor_inbox.empty():
            self._again = False
            self.retry.step(core.step, self.clock.now())
            if self._again:
                self.actor_ref.tell(Tick())  # the step wants another: after the messages that came meanwhile
        return None

    # ---- the core's outbox ----

    def execute(self, attempts: Sequence[Attempt]) -> None:
        assert self.executor is not None
        tell(self.executor, Execute(attempts))

    def abort(self, attempt: Attempt, reason: str) -> None:
        if self.executor is not None:
            tell(self.executor, Abort(attempt.key, reason))

    def wake_at(self, when: datetime) -> None:
        self.timer.at(when, self.actor_ref, Tick())

    def again(self) -> None:
        self._again = True

    def read(self) -> None:
        if self.follower is not None:
            tell(self.follower, Fresh(self.actor_ref))

    def fail(self, reason: str) -> None:
        log.error("%s; stopping", reason)
        self.stop()

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        log.error("lease manager failed: %s", exception_value)
