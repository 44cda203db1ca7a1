"""An idle server's actors sleep: two simulated servers with nothing to do, for ten virtual minutes, running the
real node. The lease manager is woken by messages that carry something (heartbeats heard, the supervisor's
question), never by a periodic tick, and a read of the log that found nothing new wakes no one. An idle SQLite
server's follower looks at the log at one repeating timer entry."""

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pykka
import pytest
from simulations.config import ServerSpec, SimConfig, WorkloadSpec
from simulations.simulator import Simulation

from actorbatch.actors.follower import Doorbell, Follower, Pace
from actorbatch.actors.lease_manager import LeaseManager
from actorbatch.actors.messages import Look, Poll
from actorbatch.actors.timer import Timer
from actorbatch.clock import ManualClock

MINUTES = 10


def test_an_idle_lease_manager_is_told_only_what_happened(monkeypatch: pytest.MonkeyPatch) -> None:
    told: Counter[str] = Counter()
    receive = LeaseManager.on_receive

    def counting(actor: LeaseManager, message: Any) -> Any:
        told[type(message).__name__] += 1
        return receive(actor, message)

    monkeypatch.setattr(LeaseManager, "on_receive", counting)
    servers = (ServerSpec("a"), ServerSpec("b"))
    config = SimConfig(seed=1, name="idle", start=datetime(2026, 1, 5, tzinfo=UTC), safety_s=MINUTES * 60.0,
                       liveness_s=60.0, servers=servers, workload=WorkloadSpec(jobs=0, submissions_per_h=0.0))
    assert Simulation(config).run().failure is None
    assert told["Beat"] >= MINUTES * 5 * len(servers)  # a heartbeat every 10 s: they ran all along
    assert told["Tick"] <= len(servers)  # the one at start (a tick every 0.25 s would be 2,400 a server)
    assert told["Observed"] <= 2 * told["Beat"] + 10  # each heartbeat, its own and the other's: no news of nothing


class QuietStore:
    """A log that never changes: the follower's looks find nothing."""

    failure = None

    def __init__(self) -> None:
        self.looks = 0

    def unchanged(self) -> bool:
        self.looks += 1
        return True

    def follow(self, after: int, limit: int) -> tuple[int, list[Any], int]:
        self.looks += 1
        return after, [], 0


class Planned(Timer):
    """A timer that only records what it is asked to plan."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.planned: list[tuple[Any, float | None]] = []

    def at(self, when: datetime, ref: pykka.ActorRef[Any], message: Any) -> None:
        self.planned.append((message, None))

    def every(self, interval_s: float, ref: pykka.ActorRef[Any], message: Any) -> None:
        self.planned.append((message, interval_s))


def test_a_relaxed_follower_reads_at_one_repeating_entry_and_plans_nothing_per_read() -> None:
    clock = ManualClock(datetime(2026, 1, 5, tzinfo=UTC))
    store, timer = QuietStore(), Planned(clock)
    pace = Pace(poll_s=0.01, safety_s=1.0, relaxed_s=0.1, found_at=clock.now() - timedelta(seconds=5))
    follower = Follower.start(store, 0, [], [], clock, timer, pace, Doorbell())
    try:
        follower.ask(Poll())  # the first read
        for _ in range(5):
            clock.advance(0.1)
            follower.ask(Look())
    finally:
        follower.stop()
    assert store.looks == 6
    assert timer.planned == [(Look(), 0.1)]  # planning each read anew would wake the timer twice a read
