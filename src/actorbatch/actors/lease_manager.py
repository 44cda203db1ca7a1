"""The lease manager actor: the I/O shell around LeaseBehaviour.

It handles its inbox in bursts: messages only update state, and one decision step runs when the inbox is empty,
so a burst of outcomes and claims is recorded in one transaction (one commit for many events).
"""

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import pykka

from actorbatch.actors.messages import Abort, Beat, Busy, Connect, Done, Drain, Execute, Freed, Observed, Tick
from actorbatch.actors.problems import ProblemLog
from actorbatch.actors.timer import Timer
from actorbatch.behaviours.leasing import Attempt, Key, LeaseBehaviour
from actorbatch.clock import Clock
from actorbatch.domain.events import Event
from actorbatch.domain.quarantine import Quarantined, Unreadable
from actorbatch.domain.runs import Run, TaskClaimed
from actorbatch.domain.servers import Server
from actorbatch.errors import Conflict
from actorbatch.store.eventstore import EventStore

log = logging.getLogger(__name__)
MAX_CONFLICT_RETRIES = 20
# Quick tasks: while attempts take less than QUICK_S on average, claim up to PREFETCH x capacity beyond the free
# threads, so each commit carries many claims and outcomes instead of a handful. Slow tasks never wait in a queue.
QUICK_S = 0.005
PREFETCH = 4
# Run-later tasks are claimed this long before they are due and start on the dot: the claim's commit is then not
# part of the due-to-start latency.
EARLY_S = 0.005


class LeaseManager(pykka.ThreadingActor):
    def __init__(self, behaviour: LeaseBehaviour, server: Server, store: EventStore, clock: Clock, timer: Timer,
                 capacity: Callable[[datetime], int], problems: ProblemLog | None = None) -> None:
        super().__init__()
        self.behaviour, self.server, self.store, self.clock = behaviour, server, store, clock
        self.timer, self.capacity = timer, capacity
        self.problems = problems or ProblemLog(server.name)
        self.executor: pykka.ActorRef[Any] | None = None
        self._done: list[Done] = []
        self._busy: set[Key] = set()  # attempts holding (or queued for) a thread
        self._wake: datetime | None = None
        self._typical_s = 1.0  # moving average of attempt durations; assume slow until measured
        # Leases are judged as of the last moment the whole log had been read: after a pause of ours, or while
        # the follower lags, a heartbeat we have not heard yet must not count as missing.
        self._read_at: datetime | None = None

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Observed):
            self._abort(self.behaviour.observe(message.events), "lease lost or run cancelled")
            self.problems.report([e.problem() for e in message.events if isinstance(e, Unreadable)])
            self.problems.report(self.behaviour.quarantine.take_found())
            if message.read_at is not None:
                self._read_at = message.read_at
        elif isinstance(message, Done):
            self._done.append(message)
            if message.freed:
                self._busy.discard(message.attempt.key)
                self._typical_s = 0.8 * self._typical_s + 0.2 * message.elapsed_s
        elif isinstance(message, Freed):
            self._busy.discard(message.key)
        elif isinstance(message, Beat):
            self._heartbeat()
        elif isinstance(message, Drain):
            self.behaviour.draining = True
        elif isinstance(message, Busy):
            return (len(self._busy), self.behaviour.draining)
        elif isinstance(message, Connect):
            self.executor = message.executor
        if self.actor_inbox.empty():
            self._step()
        return None

    def _step(self) -> None:
        now = self.clock.now()
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
        if self._read_at is not None:
            events.extend(behaviour.expirations(min(now, self._read_at)))
        behaviour.wake_due(now + timedelta(seconds=EARLY_S))
        events.extend(behaviour.claims(now, self._free(now), EARLY_S))
        recorded, refused = self._append(events)
        self._start([e for e in recorded if isinstance(e, TaskClaimed)])
        for run_id in refused:  # outcomes lost to a conflict are decided again on the reloaded run
            self._done.extend(outcomes.get(run_id, ()))
        if refused:
            self.actor_ref.tell(Tick())
        wake = behaviour.next_wake()
        if wake is not None and wake != self._wake:
            self._wake = wake
            self.timer.at(wake - timedelta(seconds=EARLY_S), self.actor_ref, Tick())

    def _free(self, now: datetime) -> int:
        threads = self.capacity(now)
        return threads * (1 + PREFETCH if self._typical_s < QUICK_S else 1) - len(self._busy)

    def _append(self, events: Sequence[Event]) -> tuple[list[Event], list[UUID]]:
        """Record events in one transaction if possible, else run by run; returns what was recorded and the runs
        whose events were refused (another writer was first), which are reloaded from the store."""
        if not events:
            return [], []
        try:
            self.store.append(*events)
            return list(events), []
        except Conflict:
            pass
        by_run: dict[UUID, list[Event]] = defaultdict(list)
        for event in events:
            by_run[event.originator_id].append(event)
        recorded, refused = [], []
        for run_id, run_events in by_run.items():
            try:
                self.store.append(*run_events)
                recorded.extend(run_events)
            except Conflict:
                self._reload(run_id)
                refused.append(run_id)
        return recorded, refused

    def _reload(self, run_id: UUID) -> None:
        fresh = self._load(run_id)
        if fresh is not None:
            self._abort(self.behaviour.replace(fresh), "lease lost")

    def _load(self, run_id: UUID) -> Run | None:
        """The run as the store has it; None if it is quarantined, which drops it from the book."""
        try:
            return self.store.load(Run, run_id)
        except Quarantined as quarantined:
            self.problems.report([quarantined.problem])
            self._abort(self.behaviour.forget(run_id), "run quarantined")
            return None

    def _record_late(self, done: Done, now: datetime) -> None:
        for _ in range(MAX_CONFLICT_RETRIES):
            run = self._load(done.attempt.run_id)
            if run is None:
                return
            try:
                self.store.append(run.finish(done.attempt.task, done.attempt.attempt, now,
                                             exit_status=done.exit_status, result=done.result))
                return
            except Conflict:
                continue

    def _start(self, claims: Sequence[TaskClaimed]) -> None:
        assert self.executor is not None
        for attempt in self.behaviour.claimed(claims):
            self._busy.add(attempt.key)
            self.executor.tell(Execute(attempt))

    def _abort(self, attempts: Sequence[Attempt], reason: str) -> None:
        for attempt in attempts:
            if self.executor is not None:
                self.executor.tell(Abort(attempt.key, reason))

    def _heartbeat(self) -> None:
        event = self.server.heartbeat(len(self.behaviour.mine), self.clock.now())
        try:
            self.store.append(event)
        except Conflict:
            log.error("server %s: another process wrote to this server's record; stopping", self.server.name)
            self.stop()
            return
        self.server.apply(event)
        self.behaviour.observe([event])

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        log.error("lease manager failed: %s", exception_value)

