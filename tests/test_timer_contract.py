"""The timer's contract, held by both sleepers over the one `Timer` and its agenda: a thread in real time (a real
server's) and the event loop in virtual time (a simulated server's). The actors rely on exactly this."""

import itertools
import queue
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pykka
import pytest
from simulations.actors import LoopTimer, Runtime
from simulations.eventloop import Loop, us

from actorbatch.actors.timer import ThreadTimer, Timer
from actorbatch.clock import SystemClock

Told = tuple[str, datetime]  # a message, and when it was handled


class Collector(pykka.ThreadingActor):
    def __init__(self, got: "queue.Queue[Told]", now: Callable[[], datetime]) -> None:
        super().__init__()
        self.got, self.now = got, now

    def on_receive(self, message: Any) -> None:
        self.got.put((message, self.now()))


@dataclass
class Backend:
    timer: Timer
    ref: pykka.ActorRef[Any]
    now: Callable[[], datetime]
    run_for: Callable[[float], list[Told]]  # let `seconds` pass; what was told meanwhile
    take: Callable[[int], list[Told]]  # the next n messages told, however long they take (up to a minute)


class LoopClock:
    def __init__(self, loop: Loop) -> None:
        self.loop = loop

    def now(self) -> datetime:
        return self.loop.now


def drained(got: "queue.Queue[Told]") -> list[Told]:
    return [got.get_nowait() for _ in range(got.qsize())]


@pytest.fixture(params=["thread", "loop"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    got: queue.Queue[Told] = queue.Queue()
    if request.param == "thread":
        clock = SystemClock()
        timer = ThreadTimer(clock)
        ref = Collector.start(got, clock.now)

        def wait(seconds: float) -> list[Told]:
            time.sleep(seconds)
            return drained(got)

        try:
            yield Backend(timer, ref, clock.now, wait, lambda n: [got.get(timeout=60) for _ in range(n)])
        finally:
            timer.stop()
            ref.stop()
    else:
        loop = Loop(datetime(2026, 1, 5, tzinfo=UTC), 100_000)
        runtime = Runtime(lambda action: loop.at(loop.now_us, action), lambda: None, ())
        timer = LoopTimer(LoopClock(loop), lambda when, action: loop.at(loop.to_us(when), action))

        def run(seconds: float) -> list[Told]:
            loop.run(loop.now_us + us(seconds))
            return drained(got)

        def take(n: int) -> list[Told]:
            loop.run(loop.now_us + us(60))
            return drained(got)[:n]

        yield Backend(timer, runtime.spawn(Collector, got, lambda: loop.now).actor_ref, lambda: loop.now, run, take)


def test_messages_come_at_their_time_in_time_order(backend: Backend) -> None:
    start = backend.now()
    backend.timer.at(start + timedelta(seconds=0.4), backend.ref, "late")
    backend.timer.at(start + timedelta(seconds=0.2), backend.ref, "early")  # sooner than the planned wake
    told = backend.take(2)
    assert [m for m, _ in told] == ["early", "late"]
    assert told[0][1] >= start + timedelta(seconds=0.2) and told[1][1] >= start + timedelta(seconds=0.4)


def test_a_repeated_message_comes_every_interval(backend: Backend) -> None:
    start = backend.now()
    backend.timer.every(0.2, backend.ref, "tick")
    told = backend.take(3)
    assert {m for m, _ in told} == {"tick"}
    times = [at for _, at in told]
    assert times[0] >= start + timedelta(seconds=0.2)
    assert all(b - a >= timedelta(seconds=0.19) for a, b in itertools.pairwise(times))


def test_after_counts_from_now_and_a_dead_actor_is_told_nothing(backend: Backend) -> None:
    start = backend.now()
    backend.timer.after(0.2, backend.ref, "once")
    [(message, at)] = backend.take(1)
    assert message == "once" and at >= start + timedelta(seconds=0.2)
    backend.ref.stop(block=False)
    backend.run_for(0.1)  # the stop is handled
    backend.timer.after(0.1, backend.ref, "nobody")
    assert backend.run_for(0.3) == []
