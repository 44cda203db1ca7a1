"""One simulated batch server process: its clock, timers, log follower, node cores and executor, and how it fails.

Everything the process does goes through `act`, which is where the faults bite: actions of a crashed incarnation
are dropped, actions due while the process is paused wait until it resumes (in their original order), and a failed
store write kills the process the way a dead actor makes the real supervisor stop the server.
"""

import contextlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from actorbatch.behaviours.leasing import Attempt, Key, LeaseBehaviour
from actorbatch.behaviours.scheduling import ScheduleBehaviour
from actorbatch.domain.events import Event
from actorbatch.domain.notifications import RetryPolicy
from actorbatch.domain.quarantine import Problem
from actorbatch.domain.servers import Server, ServerHeartbeat, capacity, parse_window, zone
from actorbatch.errors import Conflict, StoreUnavailable
from actorbatch.node.agenda import Agenda
from actorbatch.node.boot import register, seed
from actorbatch.node.lease import Done, LeaseCore
from actorbatch.node.notify import TICK_S as NOTIFY_TICK_S
from actorbatch.node.notify import Delivered, Delivery, NotifyCore
from actorbatch.node.schedule import TICK_S as SCHEDULE_TICK_S
from actorbatch.node.schedule import ScheduleCore
from simulations.config import ServerSpec, Timing
from simulations.endpoint import Endpoint
from simulations.eventloop import Action, Loop, us
from simulations.executor import BodyModel, Executor, Watcher
from simulations.log import ServerStore, SimLog, WriteFailed, WriteFaults
from simulations.projection import Projection, fold


@dataclass(frozen=True)
class Change:
    """A server process started, crashed (`lost`: for good), failed, or was paused for `for_s`."""

    at_us: int
    server: str
    kind: str  # start | crash | lost | fail | pause
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
        self._windows = tuple(parse_window(w) for w in spec.windows)
        self._zone = zone(spec.timezone)
        self.incarnation = 0
        self.writer = spec.name  # how the log tags this incarnation's appends
        self.up = False
        self.lost = False  # crashed for good
        self.paused_until_us = 0
        self.store = ServerStore(env.log, spec.name, env.writes, self._seconds)
        self.lease: LeaseCore | None = None
        self.schedules: ScheduleCore | None = None
        self.notifier: NotifyCore | None = None
        self.executor = self._executor()
        self._cursor = 0
        self._polling = False
        self._unread_since_us: int | None = None
        self._read_at_us: int | None = None  # the follower's last read that reached the head
        self._then: list[Action] = []
        self.agenda: Agenda[Action, None] = Agenda()
        self._wake_at: datetime | None = None  # when the sleeper is planned to wake
        self._wakes = 0  # names the planned wake; an older one finds itself replaced
        self.problems: list[Problem] = []  # quarantined aggregates its cores met, as a real server logs them

    # ---- the process's view of time ----

    def now(self) -> datetime:
        return self.env.loop.time(self.env.loop.now_us + self.skew_us)

    def _seconds(self) -> float:
        """The process's monotonic clock, for its store's breaker."""
        return self.env.loop.now_us / 1e6

    def read_at(self) -> datetime | None:
        """Until when this server has heard everything the log holds, as its follower tells the lease manager:
        None before its first read since it started; now, while nothing is unread (a real follower says so every
        0.1 s); else when the first event it has not read yet was appended."""
        if self._read_at_us is None:
            return None
        if self._unread_since_us is None:
            return self.now()
        return self.env.loop.time(self._unread_since_us + self.skew_us)

    def capacity(self, now: datetime) -> int:
        return capacity(self.spec.threads, self._windows, self._zone, now)

    @property
    def paused(self) -> bool:
        return self.env.loop.now_us < self.paused_until_us

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
            try:
                action()
                while self._then and self.incarnation == incarnation:
                    self._then.pop(0)()
            except WriteFailed as error:
                self.fail(f"store write failed: {error}")
            except StoreUnavailable:
                pass  # as the actors ride out an outage: what could not be written waits for the next tick
            self._then.clear()

        return run

    def at_us(self, at_us: int, action: Action) -> None:
        self.env.loop.at(at_us, self.act(action))

    def timer(self, when: datetime, action: Action, repeat_s: float | None = None) -> None:
        """Run `action` when this server's clock reads `when` (and every `repeat_s` after it ran), as the real
        Timer does: one agenda, one sleeper."""
        if self.agenda.at(when, action, None, repeat_s):
            self._plan_wake()

    def _plan_wake(self) -> None:
        """The sleeper wakes at the agenda's next entry, unless it planned to wake sooner."""
        next_at = self.agenda.next_at()
        if next_at is None or (self._wake_at is not None and self._wake_at <= next_at):
            return
        self._wake_at, self._wakes = next_at, self._wakes + 1
        wake = self._wakes
        self.at_us(self.env.loop.to_us(next_at) - self.skew_us, lambda: self._wake(wake))

    def _wake(self, wake: int) -> None:
        if wake != self._wakes:
            return  # replaced by a sooner wake
        self._wake_at = None
        for action, _ in self.agenda.due(self.now()):
            self.act(action)()  # as the Timer tells an actor: each one handled on its own
        self._plan_wake()

    def soon(self, action: Action) -> None:
        self.at_us(self.env.loop.now_us, action)

    def then(self, action: Action) -> None:
        """Run `action` as soon as the action running now is done (a message an actor sends itself)."""
        self._then.append(action)

    def every(self, interval_s: float, action: Action) -> None:
        self.timer(self.now() + timedelta(seconds=interval_s), action, interval_s)

    # ---- the lifecycle ----

    def start(self) -> None:
        """What BatchServer.start does: register, seed from the read models, start the actors and timers."""
        if self.up or self.lost:
            return
        self.incarnation += 1
        self.writer = f"{self.name}#{self.incarnation}"
        self.up, self.paused_until_us, self._polling, self._unread_since_us = True, 0, False, None
        self.agenda, self._wake_at = Agenda(), None  # the timer thread starts afresh
        self.store = ServerStore(self.env.log, self.writer, self.env.writes, self._seconds)
        self.executor = self._executor()
        self._changed("start")
        self.soon(self._boot)

    def _boot(self) -> None:
        try:
            server = self._register()
        except StoreUnavailable:  # a real `server start` retries until the store answers
            self.at_us(self.env.loop.now_us + us(1.0), self._boot)
            return
        timing = self.env.timing
        behaviour = LeaseBehaviour(self.name, self.spec.groups, timing.lease_timeout_s, self.spec.load_bias)
        schedules = ScheduleBehaviour(self.now())
        views, self._cursor = self._read_models()
        open_problems = [p for p in views.quarantine.problems.values() if p.rested is None]
        seed(behaviour, schedules, server, *views.seed(), open_problems)
        self.lease = LeaseCore(behaviour, server, self.store, self, self.capacity, self.read_at, self.problems.extend,
                               skip_idle_reaps=timing.skip_idle_reaps, lazy_heartbeats=timing.lazy_heartbeats)
        self.schedules = ScheduleCore(schedules, self.store, _ScheduleWakeup(self), self.problems.extend)
        self.notifier = NotifyCore(self.name, self.store, _NotifyOutbox(self), _Addresses(), ("email", "webhook"),
                                   timing.lease_timeout_s, self.env.retry, self.read_at, self.problems.extend)
        _, runs, servers = views.seed()
        self.notifier.seed(runs, views.deliveries(), servers)
        self.every(NOTIFY_TICK_S, self._notify_tick)
        self.every(timing.tick_s, self._tick)
        self.every(SCHEDULE_TICK_S, self._schedule_tick)
        self.every(timing.lease_timeout_s / 3, self._heartbeat)
        self._read_at_us = None
        self._polling = True  # the follower's first read: it catches up with what the read models lacked
        self.at_us(self.env.loop.now_us + us(self.env.rng.uniform(*timing.poll_s)), self._poll)
        self.lease.tick()

    def _read_models(self) -> tuple[Projection, int]:
        """The read models a starting server seeds from, and the log position they reflect: up to date, or
        lagging by up to `views_lag` events (a real server's projector trails the log)."""
        head = self.env.log.head()
        lag = min(head, self.env.rng.randint(*self.env.timing.views_lag))
        if lag == 0:
            return self.env.views, head
        return fold(event for event, _ in self.env.log.entries[:head - lag]), head - lag

    def _register(self) -> Server:
        return register(self.store, self.name, self.spec.groups, self.spec.threads, self.env.timing.lease_timeout_s,
                        "sim", self.incarnation, self.now())

    def crash(self, lost: bool = False) -> None:
        """kill -9: the process and its bodies are gone at once; nothing is written."""
        if self.up:
            self.lost = lost
            self._die("lost" if lost else "crash")

    def fail(self, reason: str) -> None:
        """An actor died: the supervisor records the stop if it can, the process exits, a process manager
        restarts it."""
        if not self.up:
            return
        if self.lease is not None:
            with contextlib.suppress(Conflict, WriteFailed, StoreUnavailable):
                self.store.append(self.lease.server.stop("failed", self.now()))
        self._die("fail", reason)
        self.env.loop.at(self.env.loop.now_us + us(self.env.rng.uniform(*self.env.timing.start_s)), self.start)

    def _die(self, kind: str, reason: str = "") -> None:
        self.up = False
        self.executor.kill()
        self.lease = self.schedules = self.notifier = None
        self._changed(kind, reason=reason)

    def _changed(self, kind: str, for_s: float = 0.0, reason: str = "") -> None:
        self.env.lifecycle(Change(self.env.loop.now_us, self.name, kind, for_s, reason))

    def pause(self, for_s: float) -> None:
        """SIGSTOP, a VM freeze, a long GC: nothing of the process runs, its bodies make no progress."""
        if not self.up:
            return
        start = max(self.env.loop.now_us, self.paused_until_us)
        self.paused_until_us = start + us(for_s)
        self.executor.freeze(self.paused_until_us - start)
        self._changed("pause", for_s=for_s)

    # ---- hearing the log ----

    def hear(self, writer: str, beats_only: bool) -> None:
        """Someone appended: unless it was this process, its follower reads the log a moment later (heartbeats
        read lazily wait for the next poll or tick)."""
        if not self.up or writer == self.writer:
            return
        if self._unread_since_us is None:
            self._unread_since_us = self.env.loop.now_us
        if beats_only and self.env.timing.lazy_heartbeats:
            return
        if not self._polling:
            self._polling = True
            self.at_us(self.env.loop.now_us + us(self.env.rng.uniform(*self.env.timing.poll_s)), self._poll)

    def heard(self, events: Sequence[Event]) -> None:
        """This process appended: its own actors hear it at once, through the store's listener."""
        if self.lease is not None and self.schedules is not None and self.notifier is not None:
            lease, notifier = self.lease, self.notifier
            self.soon(lambda: lease.observed(events))

            def hear() -> None:  # the scheduler and the notifier, in one step of the loop
                self._schedules_hear(events)
                notifier.observed(events, self.now())

            self.soon(hear)

    def _poll(self) -> None:
        try:
            self.store.reach()
        except StoreUnavailable:  # the follower's read fails: it reads again a moment later
            self.at_us(self.env.loop.now_us + us(0.5), self._poll)
            return
        self._polling, self._unread_since_us, self._read_at_us = False, None, self.env.loop.now_us
        entries, me = self.env.log.entries, self.writer
        events = [event for event, writer in entries[self._cursor:] if writer != me]
        self._cursor = len(entries)
        if self.lease is None or self.schedules is None:
            return
        if not self.schedules.caught_up:
            self.schedules.caught_up = True
            self._schedules_hear(events)
        elif events and not (self.env.timing.lazy_heartbeats and all(isinstance(e, ServerHeartbeat) for e in events)):
            self._schedules_hear(events)  # the scheduler folds no server events: only its step is skipped
        if events:
            self.lease.observed(events)
            if self.notifier is not None:
                self.notifier.observed(events, self.now())

    def _schedules_hear(self, events: Sequence[Event]) -> None:
        """As the scheduler actor: fold the message, then step."""
        if self.schedules is not None:
            self.schedules.observed(events, self.now())
            self.schedules.tick(self.now())

    def _schedule_tick(self) -> None:
        if self.schedules is not None:
            self.schedules.tick(self.now())

    def _notify_tick(self) -> None:
        """The notifier's periodic tick (deliveries of other servers to reap), skipped while it has none: a real
        server's costs a message, a simulated one a step of the loop for every server and second."""
        if self.notifier is not None and not self.notifier.idle:
            self.notifier.tick()

    def _heartbeat(self) -> None:
        if self.lease is not None:
            self.lease.heartbeat(self.now())

    def _tick(self) -> None:
        """The lease manager's periodic tick; heartbeats read lazily are read first."""
        if self.env.timing.lazy_heartbeats and self._cursor < self.env.log.head():
            self._poll()
        if self.lease is not None:
            self.lease.tick()

    # ---- the executor ----

    def _executor(self) -> Executor:
        env = self.env
        return Executor(self.name, self.skew_us, env.loop, env.bodies, env.watcher, self.at_us, self._report)

    def _report(self, message: Done | Key) -> None:
        if self.lease is not None:
            self.lease.report(message)

    def execute(self, attempt: Attempt) -> None:
        self.executor.core.execute(attempt)

    # ---- the lease core's outbox ----

    def abort(self, attempt: Attempt, reason: str) -> None:
        self.executor.core.abort(attempt.key, reason)

    def wake_at(self, when: datetime) -> None:
        lease = self.lease
        if lease is not None:
            self.timer(when, lease.tick)

    def again(self) -> None:
        lease = self.lease
        if lease is not None:
            self.then(lambda: lease.step(self.now()))


class _ScheduleWakeup:
    """The scheduler core's wake-ups, as timers of its simulated process."""

    def __init__(self, server: SimServer) -> None:
        self.server = server

    def wake_at(self, when: datetime) -> None:
        self.server.timer(when, self._tick)

    def again(self) -> None:
        self.server.then(self._tick)

    def _tick(self) -> None:
        if self.server.schedules is not None:
            self.server.schedules.tick(self.server.now())


class _NotifyOutbox:
    """The notifier core's outbox: deliveries go to the simulated endpoint, outcomes come back as messages."""

    def __init__(self, server: SimServer) -> None:
        self.server = server

    def deliver(self, delivery: Delivery) -> None:
        server, incarnation = self.server, self.server.incarnation
        server.env.endpoint.deliver(delivery, lambda: server.up and server.incarnation == incarnation,
                                    lambda outcome: server.soon(lambda: self._report(outcome)))

    def _report(self, outcome: Delivered) -> None:
        if self.server.notifier is not None:
            self.server.notifier.delivered(outcome)

    def wake_at(self, when: datetime) -> None:
        self.server.timer(when, self._tick)

    def again(self) -> None:
        self.server.then(self._step)

    def _tick(self) -> None:
        if self.server.notifier is not None:
            self.server.notifier.tick()

    def _step(self) -> None:
        if self.server.notifier is not None:
            self.server.notifier.step(self.server.now())


class _Addresses:
    """Every simulated user has an e-mail address."""

    def email(self, user: str) -> str | None:
        return f"{user}@example.com"
