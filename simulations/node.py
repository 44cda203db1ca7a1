"""One simulated batch server process: the real Node (its actors, cores and wiring) on simulated adapters.

The process's clock is the loop's (with its skew), its timer is the event loop, its actors run on the simulator's
actor runtime, its bodies take virtual time, its deliveries go to a simulated endpoint, and it hears the log the way
a real server on PostgreSQL does: a commit notification a moment after another process appends, and a safety read.
Everything the process does goes through `act`, which is where the faults bite: actions of a crashed incarnation
are dropped, actions due while the process is paused wait until it resumes (in their original order), and a failed
store write kills the actor that met it, which makes the supervisor stop the server as a real one does.
"""

import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pykka

from actorbatch.actors.config import ServerConfig
from actorbatch.actors.follower import Pace
from actorbatch.actors.lease_manager import LeaseManager
from actorbatch.actors.node import Node, Plant
from actorbatch.behaviours.leasing import Key
from actorbatch.clock import Clock
from actorbatch.domain.notifications import RetryPolicy
from actorbatch.domain.servers import parse_window
from actorbatch.errors import Conflict, StoreUnavailable
from actorbatch.node.lease import Done, LeaseCore
from actorbatch.node.notify import Delivered, Delivery
from actorbatch.node.ports import Seed
from simulations.actors import LoopTimer, Runtime
from simulations.config import ServerSpec, Timing
from simulations.endpoint import Endpoint
from simulations.eventloop import Action, Loop, us
from simulations.executor import BodyModel, SimBodies, Watcher
from simulations.log import ServerStore, SimLog, WriteFailed, WriteFaults
from simulations.projection import Projection, fold

WATCH_S = 5.0  # how often the supervisor asks whether a drain was asked for, and whether it is done


@dataclass(frozen=True)
class Change:
    """A server process started, crashed (`lost`: for good), failed, or was paused for `for_s`."""

    at_us: int
    server: str
    kind: str  # start | crash | lost | fail | drained | pause
    for_s: float = 0.0
    reason: str = ""


@dataclass
class Environment:
    """What every simulated server shares: time, the log, the read models, and the sources of faults."""

    loop: Loop
    log: SimLog
    views: Projection
    timing: Timing
    rng: random.Random  # poll latencies and restart delays
    writes: WriteFaults
    bodies: BodyModel
    watcher: Watcher
    lifecycle: Callable[[Change], None]  # what happened to which server, for the checks and the report
    endpoint: Endpoint  # where e-mails and webhooks go
    retry: RetryPolicy  # how the notifiers retry a failed delivery


class SimServer:
    """A batch server: `start`, then perhaps `crash`, `pause` or `fail`; a restart is a new incarnation."""

    def __init__(self, spec: ServerSpec, env: Environment) -> None:
        self.spec, self.env, self.name = spec, env, spec.name
        self.skew_us = us(spec.skew_s)
        self.incarnation = 0
        self.writer = spec.name  # how the log tags this incarnation's appends
        self.up = False
        self.lost = False  # crashed for good
        self.paused_until_us = 0
        self.store = ServerStore(env.log, spec.name, env.writes, self._seconds)
        self.node: Node | None = None
        self.bodies: SimBodies | None = None
        self._actors: list[pykka.Actor] = []
        self._ringing = False  # a commit notification is on its way to this process
        self._runtime = self._new_runtime()

    # ---- the process's view of time ----

    def now(self) -> datetime:
        return self.env.loop.time(self.env.loop.now_us + self.skew_us)

    def _seconds(self) -> float:
        """The process's monotonic clock, for its store's breaker."""
        return self.env.loop.now_us / 1e6

    @property
    def paused(self) -> bool:
        return self.env.loop.now_us < self.paused_until_us

    @property
    def lease(self) -> LeaseCore | None:
        """The lease manager's core, while this incarnation runs (for the book checkers)."""
        managers = [a for a in self._actors if isinstance(a, LeaseManager)]
        return managers[0].core if managers and self.node is not None else None

    def act(self, action: Action) -> Action:
        """`action` as this incarnation runs it: dropped once it died, deferred while paused."""
        incarnation = self.incarnation
        loop = self.env.loop

        def run() -> None:
            if not self.up or self.incarnation != incarnation:
                return
            if loop.now_us < self.paused_until_us:
                loop.at(self.paused_until_us, self.act(action))  # a new wrapper: `run` must not refer to itself
                return
            runtime = self._runtime
            runtime.stepping = True
            try:
                action()
                runtime.stepping = False
                runtime.flush()
            except WriteFailed as error:
                self.fail(f"store write failed: {error}")
            finally:
                runtime.stepping = False

        return run

    def at_us(self, at_us: int, action: Action) -> None:
        self.env.loop.at(at_us, self.act(action))

    def _at(self, when: datetime, action: Action) -> None:
        """Run `action` when this process's clock reads `when`."""
        self.at_us(self.env.loop.to_us(when) - self.skew_us, action)

    def soon(self, action: Action) -> None:
        self.at_us(self.env.loop.now_us, action)

    # ---- the lifecycle ----

    def start(self) -> None:
        """A new process: its store connection, timer and actors are new."""
        if self.up or self.lost:
            return
        self.incarnation += 1
        self.writer = f"{self.name}#{self.incarnation}"
        self.up, self.paused_until_us, self._ringing = True, 0, False
        self.store = ServerStore(self.env.log, self.writer, self.env.writes, self._seconds)
        self._runtime = self._new_runtime()
        self._changed("start")
        self.soon(self._boot)

    def _boot(self) -> None:
        """What `server start` does: build the node on this process's adapters and start it."""
        env, spec = self.env, self.spec
        timing = env.timing
        config = ServerConfig(name=self.name, groups=tuple(spec.groups), threads=spec.threads,
                              windows=tuple(parse_window(w) for w in spec.windows), timezone=spec.timezone,
                              lease_timeout_s=timing.lease_timeout_s, tick_s=timing.tick_s, projector="off",
                              load_bias=spec.load_bias, notify_retry=env.retry)
        clock = _ProcessClock(self)
        self._actors = []
        seeds = _ProjectionSeeds(self)
        plant = Plant(self.store, seeds, clock, LoopTimer(clock, self._at), self._spawn, self._bodies,
                      _EndpointSenders(self), _Addresses(), Pace(config.poll_s, config.safety_poll_s), "sim",
                      self.incarnation)
        node = Node(config, plant)
        try:
            node.start()
        except StoreUnavailable:  # a real `server start` is retried (by its process manager) until it answers
            self._actors = []
            self.at_us(self.env.loop.now_us + us(1.0), self._boot)
            return
        self.node = node
        self.at_us(self.env.loop.now_us + us(WATCH_S), self._watch)
        node.listening(True)

    def _new_runtime(self) -> Runtime:
        return Runtime(self.soon, lambda: self.soon(self._supervise), (WriteFailed,), self.env.rng.shuffle)

    def _spawn(self, actor_class: type[pykka.Actor], *args: Any) -> pykka.ActorRef[Any]:
        actor = self._runtime.spawn(actor_class, *args)
        if isinstance(actor, LeaseManager):  # the simulation's own settings of the core, before its first message
            timing = self.env.timing
            actor.core.skip_idle_reaps, actor.core.lazy_heartbeats = timing.skip_idle_reaps, timing.lazy_heartbeats
        self._actors.append(actor)
        return actor.actor_ref

    def _bodies(self, finished: Callable[[Done], None], timed_out: Callable[[Key], None]) -> SimBodies:
        env = self.env
        self.bodies = SimBodies(self.name, self.skew_us, env.loop, env.bodies, env.watcher, self.at_us, finished,
                                timed_out)
        return self.bodies

    def _supervise(self) -> None:
        """As `server start`'s loop: a dead actor or a store that cannot write stops the whole server."""
        if self.node is not None and not self.node.healthy():
            self.fail(str(self.store.failure or "an actor died"))

    def _watch(self) -> None:
        """As `server start`'s loop: once a drain was asked of this server, tell its actors to drain, and stop the
        process when nothing runs, is being sent or waits to be recorded (its process manager starts it again)."""
        node = self.node
        if node is None:
            return
        verdict = node.check()
        if verdict == "failed":
            self._supervise()
        elif verdict == "drained" and not node.unrecorded:
            self._stop("drained")
        else:
            self.at_us(self.env.loop.now_us + us(WATCH_S), self._watch)

    def _stop(self, kind: str, why: str = "") -> None:
        """The process stops on its own (`drained`, or `failed`: an actor died): it records that it stopped if it
        can, and its process manager starts it again later."""
        if self.node is not None:
            self.node.halt()
            with contextlib.suppress(Conflict, WriteFailed, StoreUnavailable):
                self.node.record_stop(self.node.server.stop(kind, self.now()))
        self._die("fail" if kind == "failed" else kind, why)
        self.env.loop.at(self.env.loop.now_us + us(self.env.rng.uniform(*self.env.timing.start_s)), self.start)

    def crash(self, lost: bool = False) -> None:
        """kill -9: the process and its bodies are gone at once; nothing is written."""
        if self.up:
            self.lost = lost
            self._die("lost" if lost else "crash")

    def fail(self, reason: str) -> None:
        """An actor died: the supervisor records the stop if it can, the process exits, a process manager
        restarts it."""
        if self.up:
            self._stop("failed", reason)

    def _die(self, kind: str, reason: str = "") -> None:
        self.up = False
        if self.bodies is not None:
            self.bodies.kill()
        self.unlink()
        self._changed(kind, reason=reason)

    def unlink(self) -> None:
        """Drop this incarnation's actors. An actor and its core refer to each other, and the cyclic collector is
        off while the loop runs: the links are cut, so that what a dead incarnation held is freed at once."""
        self._runtime.closed = True
        for actor in self._actors:
            vars(actor).clear()
        self.node, self.bodies, self._actors = None, None, []

    def _changed(self, kind: str, for_s: float = 0.0, reason: str = "") -> None:
        self.env.lifecycle(Change(self.env.loop.now_us, self.name, kind, for_s, reason))

    def pause(self, for_s: float) -> None:
        """SIGSTOP, a VM freeze, a long GC: nothing of the process runs, its bodies make no progress."""
        if not self.up:
            return
        start = max(self.env.loop.now_us, self.paused_until_us)
        self.paused_until_us = start + us(for_s)
        if self.bodies is not None:
            self.bodies.freeze(self.paused_until_us - start)
        self._changed("pause", for_s=for_s)

    # ---- hearing the log ----

    def hear(self, writer: str, beats_only: bool) -> None:
        """Someone appended: unless it was this process, a commit notification reaches its follower a moment later
        (heartbeats read lazily wait for the next safety read)."""
        if not self.up or writer == self.writer or self._ringing:
            return
        if beats_only and self.env.timing.lazy_heartbeats:
            return
        self._ringing = True
        self.at_us(self.env.loop.now_us + us(self.env.rng.uniform(*self.env.timing.poll_s)), self._ring)

    def _ring(self) -> None:
        self._ringing = False
        if self.node is not None:
            self.node.doorbell.ring()


class _ProcessClock(Clock):
    """The process's clock: the loop's time, plus its skew."""

    def __init__(self, server: SimServer) -> None:
        self.server = server

    def now(self) -> datetime:
        return self.server.now()


class _ProjectionSeeds:
    """A starting server's seed from the simulated read models: up to date, or lagging by up to `views_lag` events
    (a real server's projector trails the log)."""

    def __init__(self, server: SimServer) -> None:
        self.server = server

    def seed(self) -> Seed:
        env = self.server.env
        head = env.log.head()
        lag = min(head, env.rng.randint(*env.timing.views_lag))
        views = env.views if lag == 0 else fold(event for event, _ in env.log.entries[:head - lag])
        jobs, runs, servers = views.seed()
        problems = [p for p in views.quarantine.problems.values() if p.rested is None]
        return Seed(head - lag, jobs, runs, servers, problems, (), views.deliveries())


class _EndpointSenders:
    """Deliveries go to the simulated endpoint; a process that died meanwhile hears no outcome."""

    channels: tuple[str, ...] = ("email", "webhook")

    def __init__(self, server: SimServer) -> None:
        self.server = server

    def send(self, delivery: Delivery, report: Callable[[Delivered], None]) -> None:
        server, incarnation = self.server, self.server.incarnation
        server.env.endpoint.deliver(delivery, lambda: server.up and server.incarnation == incarnation, report)

    def stop(self) -> None:
        """Nothing in flight is called back once the process is gone (`send`'s liveness check)."""


class _Addresses:
    """Every simulated user has an e-mail address."""

    def email(self, user: str) -> str | None:
        return f"{user}@example.com"
