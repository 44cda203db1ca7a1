"""The lease manager's step: what one batch server claims, records, reaps and hands to its executor.

Messages only update state; one decision step runs per burst of them (when the actor's inbox is empty, or when the
simulator has delivered everything due at one virtual moment), so a burst of outcomes and claims is recorded in one
transaction. LeaseBehaviour holds the book and decides; this core does the step around it through the ports.
"""

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from actorbatch.behaviours.leasing import Attempt, Key, LeaseBehaviour, lease_end
from actorbatch.domain.events import Event
from actorbatch.domain.quarantine import Quarantined, Unreadable
from actorbatch.domain.runs import AttemptLost, Run, TaskClaimed
from actorbatch.domain.servers import Server, ServerHeartbeat, ServerStarted, ServerStopped
from actorbatch.errors import Conflict
from actorbatch.node.ports import EventLog, Outbox, Report

MAX_CONFLICT_RETRIES = 20
# Quick tasks: while attempts take less than QUICK_S on average, claim up to PREFETCH x capacity beyond the free
# threads, so each commit carries many claims and outcomes instead of a handful. Slow tasks never wait in a queue.
QUICK_S = 0.005
PREFETCH = 4
# Run-later tasks are claimed this long before they are due and start on the dot: the claim's commit is then not
# part of the due-to-start latency.
EARLY_S = 0.005


@dataclass(frozen=True)
class Done:
    """An attempt ended (`exit_status` None = success); `freed` is False while a timed-out body still runs."""

    attempt: Attempt
    exit_status: str | None
    result: Any = None
    freed: bool = True
    elapsed_s: float = 0.0


class LeaseCore:
    """One server's lease manager, without a thread: fold what it hears, step once per burst of messages."""

    def __init__(self, behaviour: LeaseBehaviour, server: Server, log: EventLog, outbox: Outbox,
                 capacity: Callable[[datetime], int], read_at: Callable[[], datetime | None], problems: Report, *,
                 skip_idle_reaps: bool = True, lazy_heartbeats: bool = False) -> None:
        """`read_at()`: until when this server has heard everything the log holds (None before its first full
        read): leases are judged as of then, so a heartbeat not heard yet never counts as missing.
        `lazy_heartbeats`: a batch of heartbeats alone does not start a step (the next tick reaps)."""
        self.behaviour, self.server, self.log, self.outbox, self.capacity = behaviour, server, log, outbox, capacity
        self.read_at, self.problems = read_at, problems
        self._skip_idle_reaps, self._lazy_heartbeats = skip_idle_reaps, lazy_heartbeats
        self.busy: set[Key] = set()  # attempts holding (or queued for) a thread
        self._done: list[Done] = []
        self._wake: datetime | None = None
        self._typical_s = 1.0  # moving average of attempt durations; assume slow until measured
        self._stepping = False
        self._reap_at: datetime | None = None  # no lease of another server can run out before this

    # ---- messages ----

    def observed(self, events: Sequence[Event]) -> None:
        """Events from the log (this server's own come back too, and are skipped)."""
        beats_only = True
        for event in events:
            if isinstance(event, ServerStarted | ServerStopped):
                self._reap_at = None  # a holder's lease may now end at once
            elif isinstance(event, TaskClaimed) and self._reap_at is not None:
                self._reap_at = min(self._reap_at, event.lease_until)
            beats_only = beats_only and isinstance(event, ServerHeartbeat)
        self._abort(self.behaviour.observe(events), "lease lost or run cancelled")
        self.problems([e.problem() for e in events if isinstance(e, Unreadable)])
        self.problems(self.behaviour.quarantine.take_found())
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

    def drain(self) -> None:
        """Claim nothing more; what runs finishes."""
        self.behaviour.draining = True

    def tick(self) -> None:
        """Ask for a step once the message being handled is in (one step per burst)."""
        if not self._stepping:
            self._stepping = True
            self.outbox.again()

    def heartbeat(self, now: datetime) -> None:
        """Renew every lease this server holds; a conflict means another process took this server's name."""
        event = self.server.heartbeat(len(self.behaviour.mine), now)
        try:
            self.log.append(event)
        except Conflict:
            self.outbox.fail(f"server {self.server.name}: another process wrote to this server's record")
            return
        self.server.apply(event)
        self.behaviour.observe([event])

    # ---- the step ----

    def step(self, now: datetime) -> None:
        self._stepping = False
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
            self.outbox.execute(attempt)
        for run_id in refused:  # outcomes lost to a conflict are decided again on the reloaded run
            self._done.extend(outcomes.get(run_id, ()))
        if refused:
            self.tick()
        wake = behaviour.next_wake()
        if wake is not None and wake != self._wake:
            self._wake = wake
            self.outbox.wake_at(wake - timedelta(seconds=EARLY_S))

    def _expirations(self, now: datetime) -> list[AttemptLost]:
        """Leases that ran out, as of the last moment this server had read the whole log (never before its first
        full read). The scan of every lease of the cluster is skipped while none can have run out yet."""
        read_at = self.read_at()
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
        """Record events in one transaction if possible, else run by run; returns what was recorded and the runs
        whose events were refused (another writer was first), which are reloaded from the log."""
        if not events:
            return [], []
        try:
            self.log.append(*events)
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
                self.log.append(*run_events)
                recorded.extend(run_events)
            except Conflict:
                fresh = self._load(run_id)
                if fresh is not None:
                    self._abort(self.behaviour.replace(fresh), "lease lost")
                    self._reap_at = None
                refused.append(run_id)
        return recorded, refused

    def _load(self, run_id: UUID) -> Run | None:
        """The run as the log has it; None if it is quarantined, which drops it from the book."""
        try:
            return self.log.load(Run, run_id)
        except Quarantined as quarantined:
            self.problems([quarantined.problem])
            self._abort(self.behaviour.forget(run_id), "run quarantined")
            return None

    def _record_late(self, done: Done, now: datetime) -> None:
        for _ in range(MAX_CONFLICT_RETRIES):
            run = self._load(done.attempt.run_id)
            if run is None:
                return
            try:
                self.log.append(run.finish(done.attempt.task, done.attempt.attempt, now,
                                           exit_status=done.exit_status, result=done.result))
                return
            except Conflict:
                continue

    def _abort(self, attempts: Sequence[Attempt], reason: str) -> None:
        for attempt in attempts:
            self.outbox.abort(attempt, reason)
