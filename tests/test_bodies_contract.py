"""The contract of the executor's `Bodies` port, held by both implementations: worker threads in real time, and the
simulator's bodies in virtual time, each under the real executor actor (on pykka's threads, or on the simulator's
actor runtime). The actor's core decides; each backend must run, stop and time out bodies so that the lease manager
hears the same reports."""

import queue
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pykka
import pytest
from simulations.actors import LoopTimer, Runtime
from simulations.eventloop import Loop, us
from simulations.executor import SimBodies

from actorbatch.actors.executor import ExecutorPool
from actorbatch.actors.messages import Abort, Execute, Freed
from actorbatch.actors.timer import ThreadTimer
from actorbatch.behaviours.leasing import Attempt, Key
from actorbatch.clock import SystemClock, random_id
from actorbatch.node.execute import TIMEOUT
from actorbatch.node.lease import Done
from actorbatch.runners.pool import ThreadBodies
from actorbatch.store.eventstore import EventStore

Report = Done | Key


@dataclass
class Backend:
    execute: Callable[[Attempt], None]
    abort: Callable[[Key, str], None]
    reports: Callable[[int], list[Report]]  # the next n reports to the lease manager, in order
    now: Callable[[], datetime]


class Collector(pykka.ThreadingActor):
    """Stands in for the lease manager: keeps what the pool tells it."""

    def __init__(self, got: "queue.Queue[Report]") -> None:
        super().__init__()
        self.got = got

    def on_receive(self, message: Any) -> None:
        self.got.put(message.key if isinstance(message, Freed) else message)


class Sleepy:
    """The simulator's bodies take `seconds` of virtual time and succeed."""

    def outcome(self, attempt: Attempt) -> tuple[float, str | None]:
        return float(attempt.params["seconds"]), None


class Nobody:
    def started(self, server: str, attempt: Attempt) -> None:
        pass

    def ended(self, server: str, attempt: Attempt) -> None:
        pass


@pytest.fixture(params=["threads", "simulated"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """The real executor actor, on its real bodies and pykka threads, or on the simulator's bodies and runtime."""
    got: queue.Queue[Report] = queue.Queue()
    if request.param == "threads":
        clock = SystemClock()
        store = EventStore("memory://", create=True)
        manager = Collector.start(got)

        def threads(finished: Callable[[Done], None], timed_out: Callable[[Key], None]) -> ThreadBodies:
            return ThreadBodies(store, store.url, clock, 2, finished, timed_out)

        timer = ThreadTimer(clock)
        pool = ExecutorPool.start(store, threads, manager, timer)
        try:
            yield Backend(lambda a: pool.tell(Execute([a])), lambda k, r: pool.tell(Abort(k, r)),
                          lambda n: [got.get(timeout=30) for _ in range(n)], clock.now)
        finally:
            timer.stop()
            pool.stop()
            manager.stop()
    else:
        loop = Loop(datetime(2026, 1, 5, tzinfo=UTC), 10_000)

        def soon(action: Callable[[], None]) -> None:
            loop.at(loop.now_us, action)

        runtime = Runtime(soon, lambda: None, ())

        def on_loop(actor: type[pykka.Actor], *args: Any) -> pykka.ActorRef[Any]:
            return runtime.spawn(actor, *args).actor_ref

        def simulated(finished: Callable[[Done], None], timed_out: Callable[[Key], None]) -> SimBodies:
            return SimBodies("s1", 0, loop, Sleepy(), Nobody(), loop.at, finished, timed_out)

        timer = LoopTimer(LoopClock(loop), lambda when, action: loop.at(loop.to_us(when), action))
        pool = on_loop(ExecutorPool, NoStore(), simulated, on_loop(Collector, got), timer)

        def reports(n: int) -> list[Report]:
            loop.run(loop.now_us + us(60))
            return [got.get_nowait() for _ in range(n)]

        yield Backend(lambda a: pool.tell(Execute([a])), lambda k, r: pool.tell(Abort(k, r)), reports,
                      lambda: loop.now)


class NoStore:
    failure = None


class LoopClock:
    def __init__(self, loop: Loop) -> None:
        self.loop = loop

    def now(self) -> datetime:
        return self.loop.now


def attempt(now: datetime, seconds: float, timeout_s: float | None = None) -> Attempt:
    return Attempt(run_id=random_id(), task="t", attempt=1, job="j", user="u", params={"seconds": seconds},
                   run="actorbatch.examples:sleep", command=None, timeout_s=timeout_s, starts_at=now)


def test_a_body_that_returns_is_reported_once_with_its_thread_free(backend: Backend) -> None:
    a = attempt(backend.now(), 0.05)
    backend.execute(a)
    [done] = backend.reports(1)
    assert isinstance(done, Done) and done.attempt == a and done.exit_status is None and done.freed


def test_a_python_body_past_its_timeout_is_reported_at_once_and_its_thread_when_it_returns(backend: Backend) -> None:
    a = attempt(backend.now(), 30, timeout_s=0.2)
    backend.execute(a)
    timed_out, freed = backend.reports(2)
    assert isinstance(timed_out, Done) and timed_out.exit_status == "timeout after 0.2s" and not timed_out.freed
    assert freed == a.key


def test_an_aborted_body_is_told_to_stop_and_reported_when_it_returns(backend: Backend) -> None:
    a = attempt(backend.now(), 30)
    backend.execute(a)
    backend.abort(a.key, "lease lost")
    backend.abort(a.key, TIMEOUT)  # too late: it was told to stop already, and has no timeout
    [done] = backend.reports(1)
    assert isinstance(done, Done) and done.attempt == a and done.freed
    backend.abort(a.key, "run cancelled")  # it ended: nothing more is reported
    quick = attempt(backend.now(), 0.01)
    backend.execute(quick)
    [after] = backend.reports(1)
    assert isinstance(after, Done) and after.attempt == quick
