"""The lease manager's step: what one batch server claims, records, reaps and hands to its executor.

Messages only update state; one decision step runs per burst of them (when the actor's inbox is empty, or when the
simulator has delivered everything due at one virtual moment), so a burst of outcomes and claims is recorded in one
transaction. LeaseBehaviour holds the book and decides; this core does the step around it through the ports.
"""

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from actorbatch.behaviours.leasing import INSTANT, Attempt, Key, LeaseBehaviour, holder_gone, lease_end
from actorbatch.domain.events import Event
from actorbatch.domain.quarantine import Quarantined, Unreadable
from actorbatch.domain.runs import AttemptLost, Run, TaskClaimed
from actorbatch.domain.servers import Server, ServerHeartbeat, ServerStarted, ServerStopped
from actorbatch.errors import Conflict, StoreUnavailable
from actorbatch.frozen import frozen
from actorbatch.node.ports import EventLog, Outbox, Report
from actorbatch.store.outage import CAP_S

MAX_CONFLICT_RETRIES = 20
# Quick tasks: while attempts take less than QUICK_S on average, claim up to PREFETCH x capacity beyond the free
# threads, so each commit carries many claims and outcomes instead of a handful. Slow tasks never wait in a queue.
# At most PREFETCH x capacity x QUICK_S of work waits for a thread: 85 ms, far inside any lease. 16 against 4: a
# quarter of the steps and commits per task, 12-20% less server CPU and 40% more tasks/s with 8 threads on PostgreSQL.
QUICK_S = 0.005
PREFETCH = 16
# Run-later tasks are claimed this long before they are due and start on the dot: the claim's commit is then not
# part of the due-to-start latency.
EARLY_S = 0.005
# After its heartbeats failed (the store was away) a server judges no missing heartbeat for a full lease timeout
# plus the time any holder may need to notice that the store answers again (its breaker probes at most CAP_S apart)
# and beat (every third of a lease timeout): until then a holder silent since the outage may simply not know yet
# that it can write. After a late heartbeat of its own (this process paused) it waits one lease timeout. A server
# that starts spares the holders whose leases had run out before it registered as after an outage (it cannot tell
# an outage it did not see from their death); those whose leases still ran then are judged at once (a peer killed
# after we started is taken over one lease timeout later). Holders known to be gone are always judged at once.
NOTICE_S = CAP_S
NEVER = datetime.max.replace(tzinfo=UTC)


@frozen
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
                 changes: Callable[[datetime], datetime | None] = lambda _: None, skip_idle_reaps: bool = True,
                 lazy_heartbeats: bool = False) -> None:
        """`read_at()`: until when this server has heard everything the log holds (None before its first full
        read): leases are judged as of then, so a heartbeat not heard yet never counts as missing.
        `changes(now)`: when `capacity` may change next (None: never).
        `lazy_heartbeats`: a batch of heartbeats alone does not start a step (the next due moment reaps)."""
        self.behaviour, self.server, self.log, self.outbox, self.capacity = behaviour, server, log, outbox, capacity
        self.read_at, self.problems, self.changes = read_at, problems, changes
        self.skip_idle_reaps, self.lazy_heartbeats = skip_idle_reaps, lazy_heartbeats
        self.busy: set[Key] = set()  # attempts holding (or queued for) a thread
        self._done: list[Done] = []
        self._wake: datetime | None = None
        self._typical_s = 1.0  # moving average of attempt durations; assume slow until measured
        self._stepping = False
        self._reap_at: datetime | None = None  # no lease of another server can run out before this
        self._asked_at: datetime | None = None  # the read_at we had when we last asked for a fresher read
        # Appends refused by a conflict or whose reply an outage swallowed: each batch was recorded whole or not
        # at all, and the log is asked which before anything else is decided (a claim recorded but never
        # started would hold its task for ever).
        self._unsettled: list[list[Event]] = []
        self._held: dict[UUID, list[Done]] = {}  # outcomes carried by those batches, by run
        self._late: list[Done] = []  # results for runs that left the book, still to record
        self._beat: ServerHeartbeat | None = None  # a heartbeat whose reply was lost
        self._beat_at: datetime | None = None  # when our last heartbeat was recorded
        self._judge_from: datetime | None = None  # no missing heartbeat is judged before this (see NOTICE_S)
        self._fresh_until: datetime | None = None  # nor, before this, of the holders silent when we started
        self._silent: set[str] = set()
        self._echo: Event | None = None  # the first event of our last append, which the log's listeners bring back

    # ---- messages ----

    def observed(self, events: Sequence[Event]) -> None:
        """Events from the log (this server's own come back too, and are skipped)."""
        if events and events[0] is self._echo:  # our last step's append, folded as it was decided: nothing new
            self._echo = None
            return
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
        if not (self.lazy_heartbeats and beats_only):
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

    @property
    def settled(self) -> bool:
        """No append is waiting to be settled: the book then holds nothing the log lacks."""
        return not self._unsettled

    @property
    def unrecorded(self) -> int:
        """Outcomes of ended attempts not yet in the log (an outage holds them back)."""
        return len(self._done) + len(self._late) + sum(map(len, self._held.values()))

    def heartbeat(self, now: datetime) -> None:
        """Renew every lease this server holds; a conflict means another process took this server's name.
        StoreUnavailable passes through: the heartbeat is checked before the next one."""
        if self._beat is not None:  # an outage swallowed the last reply: was it written?
            if self.log.recorded(self._beat):
                self.server.apply(self._beat)
            self._beat = None
        event = self.server.heartbeat(len(self.behaviour.mine), now)
        try:
            self.log.append(event)
        except StoreUnavailable:
            self._beat = event
            self._judge_from = NEVER  # until a lease timeout after our next heartbeat is recorded
            raise
        except Conflict:
            self.outbox.fail(f"server {self.server.name}: another process wrote to this server's record")
            return
        self.server.apply(event)
        self.behaviour.observe([event])
        lease_s = self.behaviour.lease_timeout_s
        late = self._beat_at is not None and (now - self._beat_at).total_seconds() > 2 * lease_s / 3
        if self._judge_from == NEVER:  # the store was away: every holder must find it back and beat
            self._judge_from, self._reap_at = now + self._grace(), None
            self.tick()  # for the next due moment, which the grace moved
        elif late:  # this process paused: the others could beat, but give them a lease timeout to be heard
            self._judge_from, self._reap_at = now + timedelta(seconds=lease_s), None
            self.tick()
        self._beat_at = now

    # ---- the step ----

    def step(self, now: datetime) -> None:
        """One decision step; StoreUnavailable passes through, with everything undecided kept for the next."""
        self._stepping = False
        self._settle()
        self._record_late(now)
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
        events.extend(self._expirations(now))
        behaviour.wake_due(now + timedelta(seconds=EARLY_S))
        threads = self.capacity(now)
        events.extend(behaviour.claims(now, self._free(threads), EARLY_S, self._busy_per_thread(threads)))
        self._start([e for e in self._append(events) if isinstance(e, TaskClaimed)])
        for batch in self._unsettled:  # their outcomes wait until the log says whether they were recorded
            for run_id in {e.originator_id for e in batch}:
                self._held.setdefault(run_id, []).extend(outcomes.pop(run_id, ()))
        if self._unsettled:
            self.tick()
        due = self.due(now)
        if due is not None and due != self._wake:
            self._wake = due
            self.outbox.wake_at(due)

    def due(self, now: datetime) -> datetime | None:
        """The next moment time alone can give this core something to decide (None: only a message can): a task
        becoming claimable, a lease of another server or a grace running out, the capacity changing. Between
        them an idle server's lease manager sleeps."""
        wake = self.behaviour.next_wake()
        moments = [wake - timedelta(seconds=EARLY_S) if wake is not None else None, self._reap_at,
                   self.changes(now)]
        return min((m for m in moments if m is not None), default=None)

    def _start(self, claims: Sequence[TaskClaimed]) -> None:
        attempts = self.behaviour.claimed(claims)
        if attempts:
            self.busy.update(attempt.key for attempt in attempts)
            self.outbox.execute(attempts)

    def _settle(self) -> None:
        """Find out what became of appends that were refused or went unanswered: start what was recorded after
        all, decide the rest again on the runs as the log has them."""
        while self._unsettled:
            batch = self._unsettled[0]
            run_ids = {e.originator_id for e in batch}
            recorded = self.log.recorded(batch[0])
            for run_id in run_ids:  # as the log has them now: another server may have reaped a claim since
                fresh = self._load(run_id)
                if fresh is not None:
                    self._abort(self.behaviour.replace(fresh), "lease lost")
            self._reap_at = None
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

    def _expirations(self, now: datetime) -> list[AttemptLost]:
        """Leases that ran out, as of the last moment this server had read the whole log (never before its first
        full read); within the grace after a start or a gap in our heartbeats (NOTICE_S), only those of holders
        known to be gone. The scan of every lease of the cluster is skipped while none can have run out yet; once
        one can have, and the log was last read whole before then, a fresher read is asked for (once per read:
        its answer brings the next step)."""
        read_at = self.read_at()
        if read_at is None:
            return []
        judged = min(now, read_at)
        if self._fresh_until is None:  # our first full read of the log
            self._fresh_until = read_at + self._grace()
            started = self.server.started_at or read_at  # when we registered: who was silent before that
            self._silent = {s.name for s in self.behaviour.servers.values()
                            if not s.stopped and (s.lease_until is None or s.lease_until < started)}
        due = self._reap_at is None or judged >= self._reap_at
        lost: list[AttemptLost] = []
        if due or not self.skip_idle_reaps:  # scanning when not due finds nothing: the simulator shows it
            spared, grace_until = self._spared(judged)
            lost = self.behaviour.expirations(judged, spared)
            if due:  # the next due moment is the same either way
                self._reap_at = self._next_expiry(spared)
                if grace_until is not None:
                    self._reap_at = min(self._reap_at or NEVER, grace_until)
        if self._reap_at is not None and judged < self._reap_at <= now and self._asked_at != read_at:
            self._asked_at = read_at
            self.outbox.read()
        return lost

    def _grace(self) -> timedelta:
        lease_s = self.behaviour.lease_timeout_s
        return timedelta(seconds=lease_s + lease_s / 3 + NOTICE_S)

    def _spared(self, now: datetime) -> tuple[Callable[[str], bool] | None, datetime | None]:
        """Which holders' missing heartbeats are not judged now (see NOTICE_S), and until when."""
        if self._judge_from is not None and now < self._judge_from:
            return (lambda _: True), self._judge_from
        if self._fresh_until is not None and now < self._fresh_until and self._silent:
            return self._silent.__contains__, self._fresh_until
        return None, None

    def _next_expiry(self, spared: Callable[[str], bool] | None) -> datetime | None:
        """The first moment a lease of another server can be found run out (just after the earliest end, judged as
        LeaseBehaviour.expirations judges it)."""
        behaviour = self.behaviour
        by_name = {s.name: s for s in behaviour.servers.values()}
        earliest: datetime | None = None
        for key, holder in behaviour.leased.items():
            run = behaviour.runs.get(key[0])
            state = run.tasks[key[1]] if run is not None else None
            if key in behaviour.mine or state is None or state.lease_until is None or state.started_at is None:
                continue
            if spared is not None and spared(holder) and not holder_gone(state, by_name.get(holder)):
                continue
            until = lease_end(state, by_name.get(holder))
            earliest = until if earliest is None else min(earliest, until)
        return None if earliest is None else earliest + INSTANT

    def _busy_per_thread(self, threads: int) -> float:
        """Attempts per thread: what the load bias compares with the other servers'."""
        return len(self.busy) / threads if threads > 0 else float("inf")

    def _free(self, threads: int) -> int:
        return threads * (1 + PREFETCH if self._typical_s < QUICK_S else 1) - len(self.busy)

    def _append(self, events: Sequence[Event]) -> list[Event]:
        """Record events in one transaction if possible, else run by run; returns what was recorded. A run whose
        events were refused (another writer was first) or went unanswered (an outage) is settled on the next
        step: started if it was recorded after all, else reloaded from the log and decided again."""
        if not events:
            return []
        try:
            self.log.append(*events)
            self._echo = events[0]
            return list(events)
        except Conflict:
            pass
        except StoreUnavailable:
            self._unsettled.append(list(events))
            return []
        by_run: dict[UUID, list[Event]] = defaultdict(list)
        for event in events:
            by_run[event.originator_id].append(event)
        recorded: list[Event] = []
        for run_events in by_run.values():
            try:
                self.log.append(*run_events)
                recorded.extend(run_events)
            except (Conflict, StoreUnavailable):
                self._unsettled.append(run_events)
        return recorded

    def _load(self, run_id: UUID) -> Run | None:
        """The run as the log has it; None if it is quarantined, which drops it from the book."""
        try:
            return self.log.load(Run, run_id)
        except Quarantined as quarantined:
            self.problems([quarantined.problem])
            self._abort(self.behaviour.forget(run_id), "run quarantined")
            return None

    def _record_late(self, now: datetime) -> None:
        """Results for runs that left the book (cancelled, complete) are recorded all the same, fenced."""
        while self._late:
            done = self._late[0]
            for _ in range(MAX_CONFLICT_RETRIES):
                run = self._load(done.attempt.run_id)
                if run is None:
                    break
                try:
                    self.log.append(run.finish(done.attempt.task, done.attempt.attempt, now,
                                               exit_status=done.exit_status, result=done.result))
                    break
                except Conflict:
                    continue
            self._late.pop(0)

    def _abort(self, attempts: Sequence[Attempt], reason: str) -> None:
        for attempt in attempts:
            self.outbox.abort(attempt, reason)
