"""The notifier actor: the pykka shell around NotifyCore. Its deliveries leave through the composition root's
`Senders` (threads sending e-mail and webhooks in a real server, a simulated endpoint in the simulator); each
outcome comes back as a Delivered message, and the core records it.
"""

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

import pykka

from actorbatch.actors.messages import Busy, Connect, Drain, Fresh, Observed, Tick, tell
from actorbatch.actors.outages import Retry, rides_out_outages
from actorbatch.actors.ports import NodeStore
from actorbatch.actors.problems import ProblemLog
from actorbatch.actors.timer import Timer
from actorbatch.clock import Clock
from actorbatch.domain.notifications import Notification, RetryPolicy
from actorbatch.domain.runs import Run
from actorbatch.domain.servers import Server
from actorbatch.node.notify import RETRY_S, Delivered, Delivery, Directory, NotifyCore

log = logging.getLogger(__name__)
NotifierSeed = tuple[list[Run], list[Notification], list[Server]]  # active runs, unfinished deliveries, servers


class Senders(Protocol):
    """Where deliveries go: `send` one, and `report` its outcome when it is known (from any thread)."""

    channels: tuple[str, ...]  # what can be sent: "webhook", and "email" when there is a way to send it

    def send(self, delivery: Delivery, report: Callable[[Delivered], None]) -> None: ...

    def stop(self) -> None: ...


class Notifier(pykka.ThreadingActor):
    def __init__(self, name: str, store: NodeStore, clock: Clock, timer: Timer, directory: Directory,
                 senders: Senders, lease_timeout_s: float, policy: RetryPolicy, problems: ProblemLog,
                 seeded: NotifierSeed) -> None:
        super().__init__()
        self.store, self.clock, self.timer, self.senders = store, clock, timer, senders
        self.core = NotifyCore(name, store, self, directory, senders.channels, lease_timeout_s, policy,
                               lambda: self._read_at, problems.report)
        self.core.seed(*seeded)
        self._read_at: datetime | None = None
        self._again = False
        self.follower: pykka.ActorRef[Any] | None = None
        self.retry = Retry(timer, self.actor_ref, RETRY_S)

    @rides_out_outages
    def on_receive(self, message: Any) -> Any:
        core = self.core
        if isinstance(message, Observed):
            if message.read_at is not None:
                self._read_at = message.read_at
            core.observed(message.events, self.clock.now())
        elif isinstance(message, Delivered):
            core.delivered(message)
        elif isinstance(message, Tick):
            core.tick()
        elif isinstance(message, Drain):
            core.drain()
        elif isinstance(message, Busy):
            return core.busy
        elif isinstance(message, Connect):
            self.follower = message.follower
        if self._again and self.actor_inbox.empty():
            self._again = False
            self.retry.step(core.step, self.clock.now())
        return None

    def on_stop(self) -> None:
        self.senders.stop()

    # ---- the core's outbox ----

    def deliver(self, delivery: Delivery) -> None:
        self.senders.send(delivery, self._report)

    def wake_at(self, when: datetime) -> None:
        self.timer.at(when, self.actor_ref, Tick())

    def again(self) -> None:
        self._again = True

    def read(self) -> None:
        if self.follower is not None:
            tell(self.follower, Fresh(self.actor_ref))

    def _report(self, outcome: Delivered) -> None:
        try:
            self.actor_ref.tell(outcome)
        except pykka.ActorDeadError:
            log.warning("a delivery ended after the server stopped; not recorded")
