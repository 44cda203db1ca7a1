"""What a batch server's lease manager decides, as a plain object: no threads, no I/O, time passed in.

It keeps the live runs it has seen on the log, claims ready tasks up to the server's free capacity (highest
priority first, then earliest due), reaps attempts whose lease ran out, and fences results. With a load bias, a
server busier than a live peer of the task's group holds a new task back for a while, so that the peer wins it.
Decisions are applied to its own book at once, so several claims on one run get consecutive versions; if the store
then refuses them (another writer was first), the shell reloads those runs and hands them back through `replace`.
The pykka actor around it does the appending and executing; the simulator drives the very same object.
"""

import heapq
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from actorbatch.domain.access import Privileges
from actorbatch.domain.events import Event
from actorbatch.domain.quarantine import Quarantine
from actorbatch.domain.runs import AttemptLost, Run, RunCreated, RunEvent, TaskClaimed, TaskDenied
from actorbatch.domain.servers import DrainRequested, Server, ServerEvent, ServerStarted
from actorbatch.domain.tasks import TaskRun
from actorbatch.domain.users import AccessClosed, UserEvent
from actorbatch.frozen import frozen

Key = tuple[UUID, str]  # (run id, task name)
Entry = tuple[int, datetime, str, UUID, str]  # a ready task: (-priority, due, run id as text, run id, task)
Later = tuple[datetime, str, UUID, str]  # a ready task claimable only later: (when, run id as text, run id, task)
# With load bias 1, how long a fully busy server holds a new task back while a peer of its group is idle: several
# times what a peer needs to hear of the task (a 10 ms poll) and record its claim. The hold scales with the bias
# and with the difference in load, and never exceeds bias x YIELD_S: then the task is claimed all the same.
YIELD_S = 0.1
INSTANT = timedelta(microseconds=1)  # a lease that ends at T is found run out from T + INSTANT on


def lease_end(state: TaskRun, holder: Server | None) -> datetime:
    """When a running attempt's lease ends (see `held_until`)."""
    assert state.lease_until is not None and state.started_at is not None
    return held_until(state.lease_until, state.started_at, holder)


def held_until(lease_until: datetime, started_at: datetime, holder: Server | None) -> datetime:
    """When a lease taken at `started_at` ends: its own expiry, extended by its holder's heartbeats, or the holder's
    restart if it has restarted since (the process that held it is gone). Task attempts and deliveries alike."""
    if holder is not None and holder.started_at is not None and holder.started_at > started_at:
        return min(lease_until, holder.started_at)
    if holder is not None and not holder.stopped and holder.lease_until is not None:
        return max(lease_until, holder.lease_until)
    return lease_until


def observe_server(servers: dict[UUID, Server], event: ServerEvent, quarantine: Quarantine) -> None:
    """Fold a server's event into `servers`. A quarantined server is dropped: its leases are judged by their own
    expiry until it restarts."""
    server = servers.get(event.originator_id)
    if server is None:
        if not isinstance(event, ServerStarted):
            return
        server = servers[event.originator_id] = Server()
    if event.originator_version > server.version and not quarantine.fold(server, event):
        del servers[event.originator_id]


def holder_gone(state: TaskRun, holder: Server | None) -> bool:
    """Whether the process that held a running attempt is known to be gone (it stopped, or its name restarted
    since the attempt began): then its lease ends without any heartbeat having to be judged missing."""
    assert state.started_at is not None
    return holder is not None and (holder.stopped or (holder.started_at is not None
                                                      and holder.started_at > state.started_at))


@frozen
class Attempt:
    """One attempt this server holds: what to execute, and the fencing token (attempt number) to report under."""

    run_id: UUID
    task: str
    attempt: int
    job: str
    user: str
    params: dict[str, Any]
    run: str | None
    command: tuple[str, ...] | None
    timeout_s: float | None
    starts_at: datetime
    os_user: str | None = None  # a shell command runs as this OS user (the job asks for it: `run_as_os_user`)

    @property
    def key(self) -> Key:
        return (self.run_id, self.task)


class LeaseBehaviour:
    """The lease manager's decisions for server `name`, serving `groups`."""

    def __init__(self, name: str, groups: Sequence[str], lease_timeout_s: float, load_bias: float = 1.0) -> None:
        """`load_bias`: 0 = every free thread competes equally; larger values make this server, when it is busier
        than a live peer (running attempts per thread), hold new tasks back longer for that peer (see claims)."""
        self.name, self.groups, self.lease_timeout_s = name, frozenset(groups), lease_timeout_s
        self.load_bias = load_bias
        self.runs: dict[UUID, Run] = {}
        self.servers: dict[UUID, Server] = {}
        self.mine: dict[Key, Attempt] = {}  # attempts this server executes
        self.leased: dict[Key, str] = {}  # every running attempt on the cluster -> its holder
        self.holding: Counter[str] = Counter()  # running attempts per holder, as `leased` has them
        self._held: dict[Key, datetime] = {}  # ready tasks held back for a less busy peer -> since when
        self._yielded: dict[str, list[Later]] = {}  # per group, those tasks by the end of their hold
        self._drains: dict[str, datetime] = {}  # other servers asked to drain -> the latest request
        self._ready: list[Entry] = []  # ready tasks, highest priority first, then earliest due
        self._queued: set[Entry] = set()  # what `_ready` holds, so that a task is queued once per due time
        self._later: list[Later] = []  # claimable only later (a run due later, a retry delay)
        self.draining = False
        self.started_at: datetime | None = None  # drain requests older than this were for an earlier process
        self.quarantine = Quarantine()  # runs and servers whose events cannot be read or folded: out of the book
        self.privileges = Privileges()  # who holds what: a task whose acting user lacks a privilege is denied

    # ---- what the log says ----

    def observe(self, events: Iterable[Event]) -> list[Attempt]:
        """Fold events from the log (our own come back too, and are skipped); returns attempts to abort."""
        aborts: list[Attempt] = []
        for event in events:
            if isinstance(event, DrainRequested):
                if event.server == self.name and (self.started_at is None or event.timestamp >= self.started_at):
                    self.draining = True  # asked of this incarnation, not of one before it
                elif event.server != self.name:
                    self._drains[event.server] = max(event.timestamp, self._drains.get(event.server, event.timestamp))
            elif isinstance(event, ServerEvent):
                self._observe_server(event)
            elif isinstance(event, UserEvent | AccessClosed):
                self.privileges.observe(event)
            elif isinstance(event, RunEvent):
                run = self.runs.get(event.originator_id)
                if run is None:
                    if not (isinstance(event, RunCreated) and event.originator_version == 1):
                        continue  # a run that was complete before we started following
                    run = self.runs[event.originator_id] = Run()
                if event.originator_version != run.version + 1:
                    continue  # already applied: our own event, echoed by the log
                touched: list[Iterable[str]] = []
                if self.quarantine.fold(run, event, then=touched.append):
                    aborts.extend(self._reindex(run, touched[0]))
                else:
                    aborts.extend(self.forget(event.originator_id))
        return aborts

    def forget(self, run_id: UUID) -> list[Attempt]:
        """Drop a quarantined run from the book, so that nothing of it is claimed or reaped any more; returns our
        attempts of it to abort (their outcomes could not be recorded)."""
        self.runs.pop(run_id, None)
        for key in [k for k in self.leased if k[0] == run_id]:
            self._unlease(key)
        for key in [k for k in self._held if k[0] == run_id]:
            del self._held[key]
        return [self.mine.pop(key) for key in [k for k in self.mine if k[0] == run_id]]

    def replace(self, fresh: Run) -> list[Attempt]:
        """After a write conflict: adopt the run as the store has it now."""
        self.runs[fresh.id] = fresh
        return self._reindex(fresh, fresh.tasks)

    def _observe_server(self, event: ServerEvent) -> None:
        observe_server(self.servers, event, self.quarantine)

    def _reindex(self, run: Run, touched: Iterable[str]) -> list[Attempt]:
        """Bring the indexes in line with the `touched` tasks of `run` (those an event changed: the others are
        indexed already); returns attempts of ours it no longer lets us run."""
        aborts = []
        for name in touched:
            state = run.tasks[name]
            key = (run.id, name)
            if state.status == "running":
                assert state.server is not None
                self._lease(key, state.server)
            else:
                self._unlease(key)
            if state.status != "ready":
                self._held.pop(key, None)
            mine = self.mine.get(key)
            if mine is not None and (state.status != "running" or state.attempt != mine.attempt):
                aborts.append(self.mine.pop(key))
            if state.status == "ready":
                self._queue(run, name)
        if run.complete:
            del self.runs[run.id]
        return aborts

    def _lease(self, key: Key, holder: str) -> None:
        old = self.leased.get(key)
        if old != holder:
            if old is not None:
                self._release(old)
            self.leased[key] = holder
            self.holding[holder] += 1

    def _unlease(self, key: Key) -> None:
        holder = self.leased.pop(key, None)
        if holder is not None:
            self._release(holder)

    def _release(self, holder: str) -> None:
        self.holding[holder] -= 1
        if not self.holding[holder]:
            del self.holding[holder]

    def _queue(self, run: Run, task: str) -> None:
        """Offer a ready task to `claims`, once per due time (a retry delay gives it a new one)."""
        assert run.definition is not None and run.due_at is not None
        due = max(run.due_at, run.tasks[task].not_before or run.due_at)
        entry = (-run.definition.priority_rank, due, str(run.id), run.id, task)
        if entry not in self._queued:
            self._queued.add(entry)
            heapq.heappush(self._ready, entry)

    # ---- decisions ----

    def claims(self, now: datetime, free: int, early_s: float = 0.0, load: float = 0.0
               ) -> list[TaskClaimed | TaskDenied]:
        """Claim up to `free` ready tasks of our groups (due within `early_s`), applying each to the book at once.
        A task whose run's acting user lacks one of its privileges is denied instead (it fails unrun, taking no
        thread); denials and claims come back in the order they were applied.

        `load`: this server's attempts per thread as the step begins. While it exceeds that of the least busy live
        peer serving the task's group (not draining; running attempts from the lease index over the threads its
        server.started announced), the task is held back for load_bias x (the difference, at most 1) x YIELD_S
        from when this server first held it, and claimed after that whatever the loads: a slow or dead peer
        delays work, never starves it. Within one step the load is not raised claim by claim, so a server that
        may claim takes a whole batch (one commit for many claims).
        """
        decided: list[TaskClaimed | TaskDenied] = []
        if self.draining:
            return decided
        claimed = 0
        floors: dict[str, float] = {}  # per group, the least load among live peers (worked out once per step)
        for group, held in list(self._yielded.items()):  # as busy as any peer again: take back what was held
            if free > 0 and load <= self._floor(group, now, floors):
                taken = 0
                while held and taken < free:  # entries of tasks another server won meanwhile do not count
                    taken += self._requeue(heapq.heappop(held))
                if not held:
                    del self._yielded[group]
        while self._ready and claimed < free:
            entry = heapq.heappop(self._ready)
            self._queued.discard(entry)
            _, due, _, run_id, task = entry
            run = self.runs.get(run_id)
            if run is None or run.tasks[task].status != "ready":
                continue  # stale index entry
            assert run.definition is not None
            if run.definition.group not in self.groups:
                continue  # the run waits for a server of its group
            if not run.can_claim(task, now + timedelta(seconds=early_s)):
                heapq.heappush(self._later, (due, str(run_id), run_id, task))
                continue
            if self.load_bias:
                group = run.definition.group
                until = self._yield_until((run_id, task), group, load, now, floors)
                if until is not None and now + timedelta(seconds=early_s) < until:
                    heapq.heappush(self._yielded.setdefault(group, []), (until, str(run_id), run_id, task))
                    continue
            lacking = self.privileges.missing(run.user, run.definition.needs(run.tasks[task].spec))
            if lacking is not None:
                denial = run.deny(task, lacking, now)
                self._held.pop((run_id, task), None)
                self._reindex(run, run.apply(denial))
                decided.append(denial)
                continue
            claim = run.claim(task, self.name, now, self.lease_timeout_s, early_s)
            run.apply(claim)
            self._lease((run_id, task), self.name)
            self._held.pop((run_id, task), None)
            decided.append(claim)
            claimed += 1
        return decided

    def _yield_until(self, key: Key, group: str, load: float, now: datetime,
                     floors: dict[str, float]) -> datetime | None:
        """Until when this server leaves ready task `key` to a less busy peer of `group`; None: claim it now."""
        floor = self._floor(group, now, floors)
        if load <= floor:
            return None
        excess = min(1.0, load - floor)
        since = self._held.setdefault(key, now)
        return since + timedelta(seconds=self.load_bias * excess * YIELD_S)

    def _floor(self, group: str, now: datetime, floors: dict[str, float]) -> float:
        floor = floors.get(group)
        if floor is None:
            floor = floors[group] = self.least_load(group, now)
        return floor

    def least_load(self, group: str, now: datetime) -> float:
        """The lowest load (running attempts per thread) among the live peers that serve `group` and are not
        draining; infinite if there is none."""
        loads = [self.holding[s.name] / s.threads for s in self.servers.values()
                 if s.name != self.name and s.threads > 0 and group in s.groups and s.alive(now)
                 and not self._drained(s)]
        return min(loads, default=float("inf"))

    def _drained(self, server: Server) -> bool:
        asked = self._drains.get(server.name)
        return asked is not None and server.started_at is not None and asked >= server.started_at

    def claimed(self, events: Sequence[TaskClaimed]) -> list[Attempt]:
        """Our claims were recorded: hand back what to execute."""
        attempts = []
        for claim in events:
            run = self.runs[claim.originator_id]
            spec = run.tasks[claim.task].spec  # not definition.task(), which searches the whole list
            assert run.definition is not None
            attempt = Attempt(run_id=run.id, task=claim.task, attempt=claim.attempt, job=run.job, user=run.user,
                              params={**spec.params, **run.params}, run=spec.run, command=spec.command,
                              timeout_s=spec.timeout_s, starts_at=claim.starts_at,
                              os_user=run.user if run.definition.run_as_os_user else None)
            self.mine[attempt.key] = attempt
            attempts.append(attempt)
        return attempts

    def wake_due(self, now: datetime) -> None:
        """Move tasks whose run's due time or retry delay has passed back to the ready index."""
        while self._later and self._later[0][0] <= now:
            self._requeue(heapq.heappop(self._later))
        for group, held in list(self._yielded.items()):  # holds that ran out
            while held and held[0][0] <= now:
                self._requeue(heapq.heappop(held))
            if not held:
                del self._yielded[group]

    def _requeue(self, later: Later) -> bool:
        """Offer a task that waited to `claims` again; False if it is no longer ready."""
        _, _, run_id, task = later
        run = self.runs.get(run_id)
        if run is None or run.tasks[task].status != "ready":
            return False
        self._queue(run, task)
        return True

    def next_wake(self) -> datetime | None:
        """When something becomes claimable by time alone, so the shell can sleep until then."""
        return min([h[0][0] for h in (self._later, *self._yielded.values()) if h], default=None)

    def expirations(self, now: datetime, spared: Callable[[str], bool] | None = None) -> list[AttemptLost]:
        """Running attempts whose lease ran out, applied to the book at once.

        A lease lasts until the later of its own expiry and the holder's last heartbeat's; an attempt claimed before
        its holder (re)started belongs to a process that is gone, so it is lost at once. The leases of `spared`
        holders are lost only if the holder is known to be gone, never for missing heartbeats.
        """
        lost = []
        by_name = {s.name: s for s in self.servers.values()}
        for (run_id, task), holder in list(self.leased.items()):
            run = self.runs.get(run_id)
            if run is None or (run_id, task) in self.mine:
                continue  # our own live attempts are kept alive by our heartbeats
            state = run.tasks[task]
            if state.status != "running" or state.lease_until is None or state.started_at is None:
                self._unlease((run_id, task))  # ended while this loop reaped a sibling
                continue
            if spared is not None and spared(holder) and not holder_gone(state, by_name.get(holder)):
                continue
            event = run.expire(task, now, lease_end(state, by_name.get(holder)))
            if event is not None:
                self._reindex(run, run.apply(event))
                lost.append(event)
        return lost

    def finish(self, attempt: Attempt, now: datetime, exit_status: str | None, result: Any = None) -> Event | None:
        """Record an attempt's outcome, fenced by its attempt number; None if the run has left the book."""
        self.mine.pop(attempt.key, None)
        run = self.runs.get(attempt.run_id)
        if run is None:
            return None
        event = run.finish(attempt.task, attempt.attempt, now, exit_status=exit_status, result=result)
        assert isinstance(event, RunEvent)
        self._reindex(run, run.apply(event))
        return event
