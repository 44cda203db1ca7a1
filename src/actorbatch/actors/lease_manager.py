"""The lease manager actor: the I/O shell around LeaseBehaviour.

It handles its inbox in bursts: messages only update state, and one decision step runs when the inbox is empty,
so a burst of outcomes and claims is recorded in one transaction (one commit for many events).
"""

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pykka

from actorbatch.actors.messages import Abort, Beat, Busy, Connect, Done, Drain, Execute, Freed, Observed, Tick
from actorbatch.actors.outages import rides_out_outages
from actorbatch.actors.timer import Timer
from actorbatch.behaviours.leasing import Attempt, Key, LeaseBehaviour
from actorbatch.clock import Clock
from actorbatch.domain.events import Event
from actorbatch.domain.runs import Run, TaskClaimed
from actorbatch.domain.servers import Server, ServerEvent
from actorbatch.errors import Conflict, StoreUnavailable
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
NEVER = datetime.max.replace(tzinfo=UTC)


class LeaseManager(pykka.ThreadingActor):
    def __init__(self, behaviour: LeaseBehaviour, server: Server, store: EventStore, clock: Clock, timer: Timer,
                 capacity: Callable[[datetime], int]) -> None:
        super().__init__()
        self.behaviour, self.server, self.store, self.clock = behaviour, server, store, clock
        self.timer, self.capacity = timer, capacity
        self.executor: pykka.ActorRef[Any] | None = None
        self._done: list[Done] = []
        self._busy: set[Key] = set()  # attempts holding (or queued for) a thread
        self._wake: datetime | None = None
        self._typical_s = 1.0  # moving average of attempt durations; assume slow until measured
        # Leases are judged as of the last moment the whole log had been read: after a pause of ours, or while
        # the follower lags, a heartbeat we have not heard yet must not count as missing.
        self._read_at: datetime | None = None
        # Appends refused by a conflict or whose reply an outage swallowed: each batch was recorded whole or not
        # at all, and the store is asked which before anything else is decided (a claim recorded but never
        # started would hold its task for ever).
        self._unsettled: list[list[Event]] = []
        self._held: dict[UUID, list[Done]] = {}  # outcomes carried by those batches, by run
        self._late: list[Done] = []  # results for runs that left the book, still to record
        self._beat: ServerEvent | None = None  # a heartbeat whose reply was lost
        self._beat_at: datetime | None = None  # when our last heartbeat was recorded
        self._judge_from: datetime | None = None  # leases are not judged before this (see _just_recovered)

    @rides_out_outages
    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Observed):
            self._abort(self.behaviour.observe(message.events), "lease lost or run cancelled")
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
            unrecorded = len(self._done) + len(self._late) + sum(map(len, self._held.values()))
            return (len(self._busy), self.behaviour.draining, unrecorded)
        elif isinstance(message, Connect):
            self.executor = message.executor
        if self.actor_inbox.empty():
            self._step()
        return None

    def _step(self) -> None:
        self._settle()
        self._record_late()
        now = self.clock.now()
        behaviour = self.behaviour
        events: list[Event] = []
        outcomes: dict[UUID, list[Done]] = defaultdict(list)
        for done in self._done:
            event = behaviour.finish(done.attempt, now, done.exit_status, done.result)
            if event is None:  # the run left the book (cancelled, complete): record the late result all the same
                self._late.append(done)
            else:
                events.append(event)
                outcomes[done.attempt.run_id].append(done)
        self._done.clear()
        if self._read_at is not None and not self._just_recovered():
            events.extend(behaviour.expirations(min(now, self._read_at)))
        behaviour.wake_due(now + timedelta(seconds=EARLY_S))
        events.extend(behaviour.claims(now, self._free(now), EARLY_S))
        self._start([e for e in self._append(events) if isinstance(e, TaskClaimed)])
        for batch in self._unsettled:
            for run_id in {e.originator_id for e in batch}:
                self._held.setdefault(run_id, []).extend(outcomes.pop(run_id, ()))
        if self._unsettled:
            self.actor_ref.tell(Tick())
        wake = behaviour.next_wake()
        if wake is not None and wake != self._wake:
            self._wake = wake
            self.timer.at(wake - timedelta(seconds=EARLY_S), self.actor_ref, Tick())

    def _settle(self) -> None:
        """Find out what became of appends that were refused or went unanswered: start what was recorded after
        all, re-decide the rest on the runs as the store has them. Raises StoreUnavailable while it is away."""
        while self._unsettled:
            batch = self._unsettled[0]
            run_ids = {e.originator_id for e in batch}
            recorded = self.store.recorded(batch[0])
            for run_id in run_ids:  # as the store has them now: another server may have reaped a claim since
                self._reload(run_id)
            if recorded:
                self._start([e for e in batch if isinstance(e, TaskClaimed) and self._still_ours(e)])
                for run_id in run_ids:
                    self._held.pop(run_id, None)
            else:
                for run_id in run_ids:
                    self._done.extend(self._held.pop(run_id, ()))
            self._unsettled.pop(0)

    def _still_ours(self, claim: TaskClaimed) -> bool:
        run = self.behaviour.runs.get(claim.originator_id)
        if run is None:
            return False
        state = run.tasks[claim.task]
        return state.status == "running" and state.attempt == claim.attempt and state.server == self.server.name

    def _just_recovered(self) -> bool:
        """Within one lease timeout of a gap in our own heartbeats (the store was away, or this process paused):
        other servers could not beat either while it lasted, so their leases are not judged until each has had
        a full lease timeout to beat again."""
        return self._judge_from is not None and self.clock.now() < self._judge_from

    def _free(self, now: datetime) -> int:
        threads = self.capacity(now)
        return threads * (1 + PREFETCH if self._typical_s < QUICK_S else 1) - len(self._busy)

    def _append(self, events: Sequence[Event]) -> list[Event]:
        """Record events in one transaction if possible, else run by run; returns what was recorded. A run whose
        events were refused (another writer was first) or went unanswered (an outage) is settled on the next
        step: started if it was recorded after all, else reloaded from the store and decided again."""
        if not events:
            return []
        try:
            self.store.append(*events)
            return list(events)
        except Conflict:
            pass
        except StoreUnavailable:
            self._unsettled.append(list(events))
            return []
        by_run: dict[UUID, list[Event]] = defaultdict(list)
        for event in events:
            by_run[event.originator_id].append(event)
        recorded = []
        for run_events in by_run.values():
            try:
                if self.store.breaker.down_since_s is not None:
                    raise StoreUnavailable("store unreachable")  # gone during this loop: settle with the rest
                self.store.append(*run_events)
                recorded.extend(run_events)
            except (Conflict, StoreUnavailable):
                self._unsettled.append(run_events)
        return recorded

    def _reload(self, run_id: UUID) -> None:
        fresh = self.store.load(Run, run_id)
        if fresh is not None:
            self._abort(self.behaviour.replace(fresh), "lease lost")

    def _record_late(self) -> None:
        """Results for runs that left the book (cancelled, complete) are recorded all the same, fenced."""
        while self._late:
            done = self._late[0]
            for _ in range(MAX_CONFLICT_RETRIES):
                run = self.store.load(Run, done.attempt.run_id)
                if run is None:
                    break
                try:
                    self.store.append(run.finish(done.attempt.task, done.attempt.attempt, self.clock.now(),
                                                 exit_status=done.exit_status, result=done.result))
                    break
                except Conflict:
                    continue
            self._late.pop(0)

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
        if self._beat is not None:  # an outage swallowed the last reply: was it written?
            if self.store.recorded(self._beat):
                self.server.apply(self._beat)
            self._beat = None
        event = self.server.heartbeat(len(self.behaviour.mine), self.clock.now())
        try:
            self.store.append(event)
        except StoreUnavailable:
            self._beat = event
            self._judge_from = NEVER  # until a lease timeout after our next heartbeat is recorded
            raise
        except Conflict:
            log.error("server %s: another process wrote to this server's record; stopping", self.server.name)
            self.stop()
            return
        self.server.apply(event)
        self.behaviour.observe([event])
        now = self.clock.now()
        lease_s = self.behaviour.lease_timeout_s
        late = self._beat_at is not None and (now - self._beat_at).total_seconds() > 2 * lease_s / 3
        if late or self._judge_from == NEVER:
            self._judge_from = now + timedelta(seconds=lease_s)
        self._beat_at = now

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        log.error("lease manager failed: %s", exception_value)

