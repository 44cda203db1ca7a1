"""One batch server's actors, wired and started from the adapters its composition root picked.

A lease manager (decides), an executor pool (runs bodies), a scheduler, a notifier and a log follower (hears other
processes), driven by one timer. The real server (`BatchServer`: a SQL store, pykka threads, worker threads, SMTP)
and the simulator (its log, its event loop, bodies in virtual time) build this same Node; only the `Plant` differs.
"""

import contextlib
import copy
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import pykka

from actorbatch.actors.config import ServerConfig
from actorbatch.actors.echo import Echo
from actorbatch.actors.executor import ExecutorPool, MakeBodies
from actorbatch.actors.follower import Doorbell, Follower, Pace
from actorbatch.actors.lease_manager import LeaseManager
from actorbatch.actors.messages import Beat, Busy, Connect, Drain, Listening, Observed, Poll, Tick, tell
from actorbatch.actors.notifier import Notifier, NotifierSeed, Senders
from actorbatch.actors.ports import NodeStore, Seeds
from actorbatch.actors.problems import ProblemLog
from actorbatch.actors.scheduler import Scheduler
from actorbatch.actors.timer import Timer
from actorbatch.behaviours.leasing import LeaseBehaviour
from actorbatch.behaviours.scheduling import ScheduleBehaviour
from actorbatch.clock import Clock
from actorbatch.domain.access import Privileges
from actorbatch.domain.events import Event
from actorbatch.domain.servers import ServerStopped, capacity, capacity_changes, zone
from actorbatch.domain.users import ACCESS_ID, AccessState
from actorbatch.errors import Conflict
from actorbatch.frozen import frozen
from actorbatch.node.boot import copy_runs, register, seed
from actorbatch.node.notify import Directory


def _answer(future: pykka.Future[Any]) -> Any:
    """An ask's answer; None while it is not in, or if the actor died first."""
    try:
        return future.get(timeout=0)
    except (pykka.Timeout, pykka.ActorDeadError):
        return None


Spawn = Callable[..., pykka.ActorRef[Any]]  # starts an actor: `spawn(ActorClass, *args)` gives its address


@frozen
class Plant:
    """The adapters a node runs on; the composition root alone picks them."""

    store: NodeStore
    seeds: Seeds  # the read models a starting server seeds from
    clock: Clock
    timer: Timer
    spawn: Spawn
    bodies: MakeBodies
    senders: Senders
    directory: Directory  # users' e-mail addresses
    pace: Pace  # when the follower reads
    host: str
    pid: int


class Node:
    """`start()` registers the server and starts its actors; `healthy()` says whether they all live;
    `halt()` stops them. Draining and waiting belong to the caller, which owns time."""

    def __init__(self, config: ServerConfig, plant: Plant) -> None:
        self.config, self.plant = config, plant
        self.refs: list[pykka.ActorRef[Any]] = []
        self.draining = False
        self.unrecorded = 0  # outcomes of ended attempts not yet in the log, as the last answer said
        self._asked: list[pykka.Future[Any]] = []  # the supervisor's questions, answered by its next round
        self._asked_draining = False  # whether they were asked after the Drain messages went out

    def start(self, hearers: Sequence[pykka.ActorRef[Any]] = ()) -> "Node":
        """Register, seed from the read models, start the actors; `hearers` hear the log too (metrics)."""
        c, p = self.config, self.plant
        self.problems = ProblemLog(c.name)
        self.server = register(p.store, c.name, c.groups, c.threads, c.lease_timeout_s, p.host, p.pid,
                               p.clock.now(), c.windows, c.timezone)
        behaviour = LeaseBehaviour(c.name, c.groups, c.lease_timeout_s, c.load_bias)
        schedules = ScheduleBehaviour(p.clock.now())
        position, seeded = self._seed(behaviour, schedules)
        tz = zone(c.timezone)

        def free_threads(now: datetime) -> int:
            return capacity(c.threads, c.windows, tz, now)

        def changes(now: datetime) -> datetime | None:
            return capacity_changes(c.windows, now)

        self.manager = p.spawn(LeaseManager, behaviour, self.server, p.store, p.clock, p.timer, free_threads,
                               changes, self.problems, c.tick_s)
        self.executor = p.spawn(ExecutorPool, p.store, p.bodies, self.manager, p.timer)
        self.scheduler = p.spawn(Scheduler, schedules, p.store, p.clock, p.timer, self.problems)
        self.notifier = p.spawn(Notifier, c.name, p.store, p.clock, p.timer, p.directory, p.senders,
                                c.lease_timeout_s, c.notify_retry, self.problems, seeded)
        self.doorbell = Doorbell()
        self.echo = Echo([self.scheduler, self.notifier], p.timer)
        hear = [self.manager, self.echo, *hearers]
        timely = [self.manager, self.notifier]  # those that judge leases by how fresh their view is
        self.follower = p.spawn(Follower, p.store, position, hear, timely, p.clock, p.timer, p.pace, self.doorbell)
        self.manager.tell(Connect(self.follower, self.executor))
        self.notifier.tell(Connect(self.follower))
        self.refs = [self.follower, self.scheduler, self.manager, self.executor, self.notifier]
        p.store.listen(self._heard)
        self.follower.tell(Poll())
        p.timer.every(c.lease_timeout_s / 3, self.manager, Beat())
        self.manager.tell(Tick())  # each then sleeps until its next due moment, or a message
        self.scheduler.tell(Tick())
        self.notifier.tell(Tick())
        return self

    def _seed(self, behaviour: LeaseBehaviour, schedules: ScheduleBehaviour) -> tuple[int, NotifierSeed]:
        """Seed the books from the read models; the log position they reflect, where the follower starts, and
        what the notifier starts from."""
        s = self.plant.seeds.seed()
        # Closed, as the log has it now: if that is later than the read models, the follower brings it again.
        closed = self.plant.store.load(AccessState, ACCESS_ID) is not None
        seeded = (copy_runs(s.runs), list(s.deliveries), [copy.copy(server) for server in s.servers])
        seed(behaviour, schedules, self.server, s.jobs, s.runs, s.servers, s.problems, Privileges(s.users, closed))
        self.problems.report(s.problems)
        return s.position, seeded

    def _heard(self, events: Sequence[Event]) -> None:
        """What this process appended: its own actors hear it without waiting for a read of the log (the scheduler
        and the notifier a moment late for attempts' claims and outcomes, see actors.echo)."""
        tell(self.manager, Observed(events))
        self.echo.heard(events)

    def listening(self, on: bool) -> None:
        """Commit notifications started or stopped arriving (PostgreSQL's LISTEN)."""
        tell(self.follower, Listening(on))

    def healthy(self) -> bool:
        """False once any actor has died or the store cannot write: the supervisor then stops the server."""
        return self.plant.store.failure is None and all(ref.is_alive() for ref in self.refs)

    def drain(self) -> None:
        """Stop claiming and sending; what runs finishes."""
        self.draining = True
        tell(self.manager, Drain())
        tell(self.notifier, Drain())

    def check(self) -> str | None:
        """One round of the supervisor: "failed" once an actor died or the store cannot write; "drained" once this
        server is draining (asked here or by `server drain NAME`) and nothing runs or is being sent; else None.
        It asks the actors without waiting: the answers count at the next round, and no question is asked again
        before its answer is in. Only answers to questions asked after the Drain messages can say "drained"."""
        if not self.healthy():
            return "failed"
        answers = [_answer(f) for f in self._asked]
        if None in answers:
            return None
        if answers:
            (busy, drain_requested, self.unrecorded), *sending = answers
            if drain_requested and not self.draining:
                self.drain()
            elif self._asked_draining and not (busy or any(sending)):
                return "drained"
        self._asked_draining = self.draining
        self._asked = [self.manager.ask(Busy(), block=False)]
        if self.draining:
            self._asked.append(self.notifier.ask(Busy(), block=False))
        return None

    def halt(self) -> list[pykka.Future[bool]]:
        """Stop the timer and every actor, at once; each actor's future answers once it stopped."""
        self.plant.store.unlisten(self._heard)
        self.plant.timer.stop()
        return [ref.stop(block=False) for ref in self.refs]

    def record_stop(self, stopped: ServerStopped) -> None:
        """Say in the log that this server stopped (once, however often it is tried)."""
        if not self.plant.store.recorded(stopped):
            with contextlib.suppress(Conflict):  # a newer incarnation of this name owns the record now
                self.plant.store.append(stopped)
