"""An idle server's actors sleep: two simulated servers with nothing to do, for ten virtual minutes, running the
real node. The lease manager is woken by messages that carry something (heartbeats heard, the supervisor's
question), never by a periodic tick, and a read of the log that found nothing new wakes no one."""

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from simulations.config import ServerSpec, SimConfig, WorkloadSpec
from simulations.simulator import Simulation

from actorbatch.actors.lease_manager import LeaseManager

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
