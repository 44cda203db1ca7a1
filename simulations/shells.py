"""The lease manager's and the scheduler's shells, single-threaded: what the pykka actors do, step for step.

The actors (`actorbatch.actors.lease_manager`, `.scheduler`) wrap LeaseBehaviour and ScheduleBehaviour; these
classes wrap the very same behaviour objects and repeat the actors' I/O decisions: which events a step appends in
one batch, what a write conflict makes them reload and decide again, when they set a timer. Messages that arrive
at one virtual moment are handled before the step runs, as an actor steps once its inbox is empty.
"""

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

from actorbatch.actors.lease_manager import EARLY_S, MAX_CONFLICT_RETRIES, PREFETCH, QUICK_S
from actorbatch.actors.messages import Done
from actorbatch.behaviours.leasing import Attempt, Key, LeaseBehaviour, lease_end
from actorbatch.behaviours.scheduling import ScheduleBehaviour
from actorbatch.domain.events import Event
from actorbatch.domain.runs import AttemptLost, Run, TaskClaimed
from actorbatch.domain.servers import Server, ServerHeartbeat, ServerStarted, ServerStopped
from actorbatch.errors import Conflict
from simulations.log import ServerStore


class Host(Protocol):
    """The simulated process the shells live in: its clock, its timers, its store connection, its executor."""

    name: str
    store: ServerStore

    def now(self) -> datetime: ...

    def read_at(self) -> datetime | None: ...

    def timer(self, when: datetime, action: Callable[[], None]) -> None: ...

    def soon(self, action: Callable[[], None]) -> None: ...

    def then(self, action: Callable[[], None]) -> None: ...

    def execute(self, attempt: Attempt) -> None: ...

    def abort(self, attempt: Attempt) -> None: ...

    def fail(self, reason: str) -> None: ...


class LeaseShell:
    """LeaseManager without the thread: folds what it hears, runs one decision step per burst of messages."""

    def __init__(self, host: Host, behaviour: LeaseBehaviour, server: Server,
                 capacity: Callable[[datetime], int], skip_idle_reaps: bool = True,
                 lazy_heartbeats: bool = False) -> None:
        self.host, self.behaviour, self.server, self.capacity = host, behaviour, server, capacity
        self.busy: set[Key] = set()  # attempts holding (or queued for) a thread
        self._done: list[Done] = []
        self._wake: datetime | None = None
        self._typical_s = 1.0
        self._stepping = False
        self._skip_idle_reaps, self._lazy_heartbeats = skip_idle_reaps, lazy_heartbeats
        self._reap_at: datetime | None = None  # no lease of another server can run out before this

    # ---- messages ----

    def observed(self, events: Sequence[Event]) -> None:
        beats_only = True
        for event in events:
            if isinstance(event, ServerStarted | ServerStopped):
                self._reap_at = None  # a holder's lease may now end at once
            elif isinstance(event, TaskClaimed) and self._reap_at is not None:
                self._reap_at = min(self._reap_at, event.lease_until)
            beats_only = beats_only and isinstance(event, ServerHeartbeat)
        self._abort(self.behaviour.observe(events))
        if not (self._lazy_heartbeats and beats_only):
            self.tick()

    def report(self, message: Done | Key) -> None:
        """From the executor: an attempt ended (Done), or a timed-out attempt's thread came back (its key)."""
        if isinstance(message, Done):
            self._done.append(message)
            if message.freed:
                self.busy.discard(message.attempt.key)
                self._typical_s = 0.8 * self._typical_s + 0.2 * message.elapsed_s
        else:
            self.busy.discard(message)
        self.tick()

    def tick(self) -> None:
        """Step once the message being handled is in, as the actor does when its inbox is empty."""
        if not self._stepping:
            self._stepping = True
            self.host.then(self._step)

    def heartbeat(self) -> None:
        event = self.server.heartbeat(len(self.behaviour.mine), self.host.now())
        try:
            self.host.store.append(event)
        except Conflict:
            self.host.fail("another process wrote to this server's record")
            return
        self.server.apply(event)
        self.behaviour.observe([event])

    # ---- the step ----

    def _step(self) -> None:
        self._stepping = False
        now = self.host.now()
        behaviour = self.behaviour
        events: list[Event] = []
        outcomes: dict[UUID, list[Done]] = defaultdict(list)
        for done in self._done:
            event = behaviour.finish(done.attempt, now, done.exit_status, done.result)
            if event is None:  # the run left the book (cancelled, complete): record the late result all the same
                self._record_late(done, now)
            else:
                events.append(event)
                outcomes[done.attempt.run_id].append(done)
        self._done.clear()
        events.extend(self._expirations(now))
        behaviour.wake_due(now + timedelta(seconds=EARLY_S))
        events.extend(behaviour.claims(now, self._free(now), EARLY_S))
        recorded, refused = self._append(events)
        for attempt in behaviour.claimed([e for e in recorded if isinstance(e, TaskClaimed)]):
            self.busy.add(attempt.key)
            self.host.execute(attempt)
        for run_id in refused:  # outcomes lost to a conflict are decided again on the reloaded run
            self._done.extend(outcomes.get(run_id, ()))
        if refused:
            self.tick()
        wake = behaviour.next_wake()
        if wake is not None and wake != self._wake:
            self._wake = wake
            self.host.timer(wake - timedelta(seconds=EARLY_S), self.tick)

    def _expirations(self, now: datetime) -> list[AttemptLost]:
        """LeaseBehaviour.expirations as the actor calls it: as of the last moment this server had read the whole
        log, and not before it first has (a heartbeat not heard yet must not count as missing).

        The call scans every lease of the cluster; it is skipped while none can have run out yet, which decides
        exactly the same (tests compare the logs) and makes a simulated day several times faster."""
        read_at = self.host.read_at()
        if read_at is None:
            return []
        now = min(now, read_at)
        if self._skip_idle_reaps and self._reap_at is not None and now < self._reap_at:
            return []
        lost = self.behaviour.expirations(now)
        self._reap_at = self._next_expiry()
        return lost

    def _next_expiry(self) -> datetime | None:
        """The earliest end of another server's lease, judged as LeaseBehaviour.expirations judges it."""
        behaviour = self.behaviour
        by_name = {s.name: s for s in behaviour.servers.values()}
        earliest: datetime | None = None
        for key, holder in behaviour.leased.items():
            run = behaviour.runs.get(key[0])
            state = run.tasks[key[1]] if run is not None else None
            if key in behaviour.mine or state is None or state.lease_until is None or state.started_at is None:
                continue
            until = lease_end(state, by_name.get(holder))
            earliest = until if earliest is None else min(earliest, until)
        return earliest

    def _free(self, now: datetime) -> int:
        threads = self.capacity(now)
        return threads * (1 + PREFETCH if self._typical_s < QUICK_S else 1) - len(self.busy)

    def _append(self, events: Sequence[Event]) -> tuple[list[Event], list[UUID]]:
        """One transaction if possible, else run by run; the runs refused by a conflict are reloaded."""
        if not events:
            return [], []
        try:
            self.host.store.append(*events)
            return list(events), []
        except Conflict:
            pass
        by_run: dict[UUID, list[Event]] = defaultdict(list)
        for event in events:
            by_run[event.originator_id].append(event)
        recorded: list[Event] = []
        refused: list[UUID] = []
        for run_id, run_events in by_run.items():
            try:
                self.host.store.append(*run_events)
                recorded.extend(run_events)
            except Conflict:
                fresh = self.host.store.load(Run, run_id)
                if fresh is not None:
                    self._abort(self.behaviour.replace(fresh))
                    self._reap_at = None
                refused.append(run_id)
        return recorded, refused

    def _record_late(self, done: Done, now: datetime) -> None:
        for _ in range(MAX_CONFLICT_RETRIES):
            run = self.host.store.load(Run, done.attempt.run_id)
            if run is None:
                return
            try:
                self.host.store.append(run.finish(done.attempt.task, done.attempt.attempt, now,
                                                  exit_status=done.exit_status, result=done.result))
                return
            except Conflict:
                continue

    def _abort(self, attempts: Sequence[Attempt]) -> None:
        for attempt in attempts:
            self.host.abort(attempt)


class ScheduleShell:
    """The Scheduler actor without the thread: creates the runs of fire times, races the other servers' ones.
    It decides nothing until its server's follower has caught up with the log (`caught_up`)."""

    def __init__(self, host: Host, behaviour: ScheduleBehaviour) -> None:
        self.host, self.behaviour = host, behaviour
        self.caught_up = False
        self._pending: list[Event] = []
        self._wake: datetime | None = None

    def observed(self, events: Sequence[Event]) -> None:
        now = self.host.now()
        for job in self.behaviour.observe(events):
            self._pending.extend(self.behaviour.release(job, now))
        self.step()

    def step(self) -> None:
        if not self.caught_up:
            return
        events = [*self._pending, *self.behaviour.decide(self.host.now())]
        self._pending.clear()
        self._append(events)
        wake = self.behaviour.next_wake()
        if wake is not None and wake <= self.host.now():
            self.host.soon(self.step)  # a long catch-up goes on after the other messages had their turn
        elif wake is not None and wake != self._wake:
            self._wake = wake
            self.host.timer(wake, self.step)

    def _append(self, events: list[Event]) -> None:
        """Every event is version 1 of its own id: a conflict only means another scheduler decided first."""
        if not events:
            return
        try:
            self.host.store.append(*events)
        except Conflict:
            for event in events:
                try:
                    self.host.store.append(event)
                except Conflict:
                    continue
