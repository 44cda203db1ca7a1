"""The lease core that real servers run, driven by hand on the simulator's log through a store outage: a claim
written as the store went away, its reply lost, must still run on its holder, however late the holder notices
that the store is back (servers notice one by one, each at its breaker's next probe)."""

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from simulations.log import ServerStore, SimLog, WriteFaults

from actorbatch.behaviours.leasing import INSTANT, Attempt, LeaseBehaviour
from actorbatch.behaviours.scheduling import ScheduleBehaviour
from actorbatch.clock import random_id
from actorbatch.domain.events import Event
from actorbatch.domain.jobfile import parse_job
from actorbatch.domain.runs import AttemptLost, TaskClaimed
from actorbatch.errors import StoreUnavailable
from actorbatch.node.boot import register, seed
from actorbatch.node.commands import Commands
from actorbatch.node.lease import LeaseCore

LEASE_S = 3.0
EPOCH = datetime(2026, 1, 5, tzinfo=UTC)
STEP_S = 0.05
BACK_AT_S = 24.3  # just after the holder's breaker probed: it notices 4 s after the judge


class Clock:
    def __init__(self) -> None:
        self.s = 0.0

    def now(self) -> datetime:
        return EPOCH + timedelta(seconds=self.s)


class Node:
    """One server: its lease core, its follower (reads every 0.25 s), heartbeats every second; its outbox records
    what the core asks for."""

    def __init__(self, log: SimLog, name: str, groups: tuple[str, ...], clock: Clock) -> None:
        self.name, self.clock = name, clock
        self.store = ServerStore(log, name, WriteFaults(random.Random(0), 0.0, 0.0), lambda: clock.s)
        server = register(self.store, name, groups, 1, LEASE_S, "test", 1, clock.now())
        behaviour = LeaseBehaviour(name, groups, LEASE_S)
        seed(behaviour, ScheduleBehaviour(clock.now()), server, [], [], [], [])
        self.read_at: datetime | None = None
        self.core = LeaseCore(behaviour, server, self.store, self, lambda _: 1, lambda: self.read_at, lambda _: None)
        self.unread = [event for event, writer in log.entries if writer != name]  # what its read models held
        self.executed: list[Attempt] = []
        self.noticed_at: float | None = None  # when this process found the store back after the outage
        self.wakes: list[datetime] = []  # the moments the core asked to be woken at
        self.reads = 0  # how often it asked for a fresher read of the log
        self._wanted = False

    def act(self) -> None:
        """One moment of the process: read the log, beat, step, as its actors would; an outage cuts each short."""
        s = self.clock.s
        if round(s / STEP_S) % 5 == 0:
            self._try(self._read)
        if round(s / STEP_S) % 20 == 0:
            self._try(lambda: self.core.heartbeat(self.clock.now()))
        self.core.tick()
        if self._wanted:
            self._wanted = False
            self._try(lambda: self.core.step(self.clock.now()))

    def _read(self) -> None:
        self.store.follow(0, 0)  # a read of the log: it fails while the store is away
        events, self.unread = self.unread, []
        self.read_at = self.clock.now()
        if events:
            self.core.observed(events)

    def _try(self, call: Any) -> None:
        down = self.store.breaker.down_since_s is not None
        try:
            call()
        except StoreUnavailable:
            return
        if down and self.store.breaker.down_since_s is None:
            self.noticed_at = self.clock.s

    # ---- the core's outbox ----

    def execute(self, attempts: Sequence[Attempt]) -> None:
        self.executed.extend(attempts)

    def abort(self, attempt: Attempt, reason: str) -> None:
        raise AssertionError(f"{self.name} told to abort {attempt.key}: {reason}")

    def wake_at(self, when: datetime) -> None:
        self.wakes.append(when)

    def again(self) -> None:
        self._wanted = True

    def fail(self, reason: str) -> None:
        raise AssertionError(reason)

    def read(self) -> None:
        self.reads += 1


def cluster() -> tuple[Clock, Node, Node, Commands]:
    """A holder and a judge (of another group: it only judges the holder's leases) on one log, and a user."""
    log, clock, nodes = SimLog(), Clock(), list[Node]()
    log.listeners.append(lambda events, writer: [n.unread.extend(events) for n in nodes if n.name != writer])
    nodes.extend([Node(log, "holder", ("default",), clock), Node(log, "judge", ("elsewhere",), clock)])
    user = Commands(ServerStore(log, "user", WriteFaults(random.Random(0), 0.0, 0.0, enabled=False), lambda: 0.0),
                    "user", clock, random_id)
    user.add_jobs([parse_job({"name": "job", "tasks": [{"name": "t", "run": "actorbatch.examples:noop"}]})])
    return clock, nodes[0], nodes[1], user


def test_an_idle_core_sleeps_until_a_lease_can_have_run_out_then_asks_once_per_read_for_a_fresher_one() -> None:
    clock, holder, judge, user = cluster()
    judge._read()
    judge.core.tick()
    judge.core.step(clock.now())
    assert judge.wakes == [] and judge.core.due(clock.now()) is None  # nothing can fall due: no tick
    run_id = user.run_job("job")
    holder._read()
    holder.core.step(clock.now())
    claim = holder.store.events(run_id)[-1]
    assert isinstance(claim, TaskClaimed) and holder.executed  # then the holder goes silent
    clock.s = 0.05
    judge._read()
    judge.core.step(clock.now())
    assert judge.wakes == [claim.lease_until + INSTANT]  # the first moment the lease can be found run out
    clock.s = LEASE_S + 0.5  # woken: the log was last read long before
    for _ in range(2):
        judge.core.tick()
        judge.core.step(clock.now())
    assert judge.reads == 1 and not isinstance(holder.store.events(run_id)[-1], AttemptLost)
    judge._read()  # the read it asked for
    judge.core.step(clock.now())
    assert isinstance(holder.store.events(run_id)[-1], AttemptLost)


def outage(back_at_s: float) -> tuple[Node, Node, list[Event]]:
    """A holder and a judge beat for 12 s; then a run is created and the store goes away as the holder's claim is
    written; it is back at `back_at_s`; 30 s later, the holder, the judge and the run's events."""
    log, clock, nodes = SimLog(), Clock(), list[Node]()
    log.listeners.append(lambda events, writer: [n.unread.extend(events) for n in nodes if n.name != writer])
    holder = Node(log, "holder", ("default",), clock)
    nodes.append(holder)
    judge = Node(log, "judge", ("elsewhere",), clock)  # serves another group: it only judges the holder's lease
    nodes.append(judge)
    user = Commands(ServerStore(log, "user", WriteFaults(random.Random(0), 0.0, 0.0, enabled=False), lambda: 0.0),
                    "user", clock, random_id)
    user.add_jobs([parse_job({"name": "job", "tasks": [{"name": "t", "run": "actorbatch.examples:noop"}]})])

    def run_until(s: float) -> None:
        while clock.s < s:
            clock.s = round(clock.s + STEP_S, 6)
            for node in nodes:
                node.act()

    run_until(12.0)  # both have beaten long enough to judge each other's leases
    run_id = user.run_job("job")
    log.down, log.swallowing = True, {"holder"}  # the holder's claim is written as the store goes away
    holder.unread, holder.read_at = [], clock.now()
    holder.core.observed(log.events(run_id))
    holder.core.step(clock.now())
    assert isinstance(log.events(run_id)[-1], TaskClaimed) and holder.executed == []
    run_until(back_at_s)
    log.down, log.swallowing = False, set()
    run_until(back_at_s + 30)
    return holder, judge, list(log.events(run_id))


def test_a_claim_whose_reply_an_outage_swallowed_runs_although_its_holder_notices_the_store_back_last() -> None:
    holder, judge, events = outage(BACK_AT_S)
    assert holder.noticed_at is not None and judge.noticed_at is not None
    assert holder.noticed_at - judge.noticed_at > LEASE_S  # the judge could write long before the holder could
    assert not [e for e in events if isinstance(e, AttemptLost)]
    assert [(a.task, a.attempt) for a in holder.executed] == [("t", 1)]
