"""The event log ports' contract, run against every backend: the in-memory store, SQLite, PostgreSQL and the
simulator's log. The node cores rely on exactly this (`EventLog`), and a server's actors on the rest (`NodeStore`:
following the log, hearing their own appends), so a backend that passes can carry a server."""

import random
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from simulations.log import ServerStore, SimLog, WriteFaults

from actorbatch.actors.ports import NodeStore
from actorbatch.domain.events import Event, server_id
from actorbatch.domain.servers import Server, ServerHeartbeat
from actorbatch.errors import Conflict, Moved
from actorbatch.node.ports import EventLog
from actorbatch.store.eventstore import EventStore
from tests.conftest import T0

Reader = Callable[[int], Sequence[tuple[int, Event]]]


@dataclass
class Backend:
    log: NodeStore
    read: Reader  # (position, event) after a position, in log order
    fresh: Callable[[], NodeStore]  # a second connection to the same log (another process)


def _store(url: str) -> Iterator[Backend]:
    stores = [EventStore(url, create=True)]

    def fresh() -> NodeStore:
        stores.append(EventStore(url))
        return stores[-1]

    yield Backend(stores[0], stores[0].read, fresh)
    for store in stores:
        store.close()


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres), "simulation"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "memory":
        store = EventStore("memory://", create=True)
        yield Backend(store, store.read, lambda: pytest.skip("one process has it"))
    elif request.param == "sqlite":
        yield from _store(f"sqlite:///{tmp_path / 'log.db'}")
    elif request.param == "postgresql":
        yield from _store(request.getfixturevalue("pg_url"))
    else:
        sim = SimLog()
        faults = WriteFaults(random.Random(1), 0.0, 0.0)
        yield Backend(ServerStore(sim, "s1", faults, lambda: 0.0), sim.read,
                      lambda: ServerStore(sim, "s2", faults, lambda: 0.0))


def started(name: str = "s") -> tuple[Server, Event]:
    server = Server()
    event = server.start(name, ("default",), 2, 30.0, "host", 1, T0)
    server.apply(event)
    return server, event


def beat(server: Server, seconds: float) -> ServerHeartbeat:
    event = server.heartbeat(0, T0 + timedelta(seconds=seconds))
    server.apply(event)
    return event


def test_appended_events_load_back_folded_in_version_order(backend: Backend) -> None:
    server, first = started()
    backend.log.append(first, beat(server, 1), beat(server, 2))
    loaded = backend.log.load(Server, server_id("s"))
    assert loaded is not None and loaded.version == 3 and loaded.last_seen == T0 + timedelta(seconds=2)
    assert [e.originator_version for e in backend.log.events(server_id("s"), after_version=1)] == [2, 3]


def test_an_unknown_aggregate_loads_as_none(backend: Backend) -> None:
    assert backend.log.load(Server, uuid4()) is None
    assert list(backend.log.events(uuid4())) == []


def test_a_taken_version_conflicts_and_the_whole_append_writes_nothing(backend: Backend) -> None:
    _server, first = started()
    backend.log.append(first)
    _, other = started("t")
    _, again = started()  # a second process deciding version 1 of the same server
    with pytest.raises(Conflict):
        backend.log.append(other, again)  # `other` alone would be fine
    assert backend.log.load(Server, server_id("t")) is None
    assert list(backend.log.events(server_id("s"))) == [first]


def test_events_are_read_in_append_order_with_increasing_positions(backend: Backend) -> None:
    server, first = started()
    backend.log.append(first, beat(server, 1))
    backend.log.append(beat(server, 2))
    read = backend.read(0)
    assert [e.originator_version for _, e in read] == [1, 2, 3]
    assert [p for p, _ in read] == sorted({p for p, _ in read})
    assert [e.originator_version for _, e in backend.read(read[0][0])] == [2, 3]


def test_of_two_writers_racing_for_one_version_exactly_one_wins(backend: Backend) -> None:
    _server, first = started()
    backend.log.append(first)
    logs = [backend.log, backend.fresh()]
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def race(log: EventLog, seconds: float) -> None:
        event = ServerHeartbeat(originator_id=server_id("s"), originator_version=2,
                                timestamp=T0 + timedelta(seconds=seconds), running=0,
                                lease_until=T0 + timedelta(seconds=30 + seconds))
        barrier.wait()
        try:
            log.append(event)
            outcomes.append("won")
        except Conflict:
            outcomes.append("lost")

    threads = [threading.Thread(target=race, args=(log, i + 1)) for i, log in enumerate(logs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == ["lost", "won"]
    loaded = backend.log.load(Server, server_id("s"))
    assert loaded is not None and loaded.version == 2


def test_times_and_ids_come_back_exactly(backend: Backend) -> None:
    moment = datetime(2026, 3, 29, 1, 59, 59, 999_999, tzinfo=UTC)
    server = Server()
    event = server.start("exact", ("a", "b"), 3, 7.5, "h", 42, moment)
    backend.log.append(event)
    [loaded] = backend.log.events(server_id("exact"))
    assert loaded == event
    assert isinstance(loaded.originator_id, UUID)


def test_follow_brings_what_others_appended_in_order_and_skips_its_own(backend: Backend) -> None:
    """Own appends are skipped from the first `follow` on (a client that never follows keeps no trace of them)."""
    other = backend.fresh()
    assert backend.log.follow(0, 10) == (0, [], 0) and other.follow(0, 10) == (0, [], 0)
    server, first = started()
    backend.log.append(first)
    theirs, mine = beat(server, 1), beat(server, 2)
    other.append(theirs)
    backend.log.append(mine)
    position, events, read = backend.log.follow(0, 10)
    assert events == [theirs] and read == 3  # its own appends are read past, not brought again
    assert backend.log.follow(position, 10) == (position, [], 0)
    position, events, read = other.follow(0, 1)  # a limit: the rest comes with the next calls
    assert events == [first] and read == 1
    position, events, read = other.follow(position, 1)
    assert events == [] and read == 1
    assert other.follow(position, 10)[1:] == ([mine], 1)


def test_listeners_hear_each_committed_append_of_their_own_connection_once(backend: Backend) -> None:
    heard: list[Sequence[Event]] = []
    backend.log.listen(heard.append)
    server, first = started()
    backend.log.append(first, beat(server, 1))
    with pytest.raises(Conflict):
        backend.log.append(first)
    backend.fresh().append(beat(server, 2))  # another process's append is for the follower to bring
    backend.log.unlisten(heard.append)
    backend.log.append(beat(server, 3))
    assert [[e.originator_version for e in batch] for batch in heard] == [[1, 2]]


def test_a_conditional_append_writes_only_while_what_it_relies_on_stands(backend: Backend) -> None:
    server, first = started()
    backend.log.append(first)
    other = server_id("other")
    backend.log.append_if({server_id("s"): 1, other: 0}, beat(server, 1))
    with pytest.raises(Moved) as refused:
        backend.log.append_if({server_id("s"): 1, other: 0}, beat(server, 2))  # "s" is at version 2 now
    assert refused.value.moved == {server_id("s")}
    assert [e.originator_version for e in backend.log.events(server_id("s"))] == [1, 2]
    reloaded = backend.log.load(Server, server_id("s"))
    assert reloaded is not None
    backend.log.append_if({server_id("s"): 2}, beat(reloaded, 2), beat(reloaded, 3))  # judged once, before the first
    assert [e.originator_version for e in backend.log.events(server_id("s"))] == [1, 2, 3, 4]
