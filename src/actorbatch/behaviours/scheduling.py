"""What a scheduler decides, as a plain object: which runs to create for which fire times, and when.

Every server runs one. All of them compute the same fire times and the same run ids (uuid5 of job and fire time),
so however many race, the store keeps exactly one decision per fire time. The next fire of every scheduled job
sits on a heap: each fire costs O(log n), whatever the number of jobs.
"""

import functools
import heapq
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from actorbatch.domain.events import Event, job_id
from actorbatch.domain.jobs import JobEvent, JobState
from actorbatch.domain.quarantine import Quarantine
from actorbatch.domain.recurrence import Schedule, misfired
from actorbatch.domain.runs import FireSkipped, Run, RunCreated, RunEvent, scheduled_run_id

MAX_QUEUED = 100  # overlap = "queue": fire times held back per job, at most
MAX_PER_DECISION = 1000  # events one `decide` returns; a long catch-up continues on the next call


@dataclass
class Entry:
    """A scheduled job as the scheduler needs it."""

    job: JobState
    schedule: Schedule
    cursor: datetime  # fire times up to here are handled (run created, skipped, or forgiven by the misfire policy)
    generation: int
    caught_up: bool = False  # missed fire times (before this scheduler started) were dealt with
    queued: list[datetime] = field(default_factory=list)  # a list: 56 bytes empty, a deque 760 (x 100,000 jobs)
    backfill: frozenset[UUID] = frozenset()  # runs created for missed fire times (rare: no set per job)


class ScheduleBehaviour:
    def __init__(self, started_at: datetime) -> None:
        self.started_at = started_at  # fire times before this, not yet handled, were missed
        self.jobs: dict[UUID, JobState] = {}
        self.entries: dict[UUID, Entry] = {}  # the scheduled ones
        self.active: dict[UUID, set[UUID]] = {}  # job id -> its active runs (for the overlap policy)
        self._runs: dict[UUID, Run] = {}  # active runs, folded to see them end
        self._heap: list[tuple[datetime, int, UUID, int]] = []  # (next fire, seq, job id, generation)
        self._seq = itertools.count()
        self.quarantine = Quarantine()  # jobs and runs whose events cannot be read or folded: they fire no more

    # ---- what the log says ----

    def adopt(self, job: JobState, runs: Iterable[Run] = ()) -> None:
        """Seed from the read models: a job as they have it, and its active runs."""
        assert job.id is not None
        self.jobs[job.id] = job
        if not self._guard(job, functools.partial(self._refresh, job)):
            return
        for run in runs:
            self._track(run)

    def observe(self, events: Iterable[Event]) -> list[UUID]:
        """Fold events; returns the jobs whose last active run just ended (queued fires may start)."""
        freed = []
        for event in events:
            if isinstance(event, JobEvent):
                if not self._fold_job(event):
                    self.entries.pop(event.originator_id, None)
            elif isinstance(event, RunCreated | FireSkipped):
                lost_race = self._fired(event)
                if lost_race is not None:
                    freed.append(lost_race)
            if isinstance(event, RunEvent):
                run = self._runs.get(event.originator_id)
                if run is None and isinstance(event, RunCreated) and job_id(event.definition["name"]) in self.entries:
                    run = Run()  # only runs of scheduled jobs matter to the overlap policy
                if run is not None and event.originator_version == run.version + 1:
                    ended = self._track(run) if self.quarantine.fold(run, event) else self._forget(run.id)
                    if ended is not None:
                        freed.append(ended)
        return freed

    def _fold_job(self, event: JobEvent) -> bool:
        """Fold a job's event and place the job on the heap again; False if the job is (now) quarantined."""
        if not self.quarantine.admit(event):
            return False
        job = self.jobs.setdefault(event.originator_id, JobState())
        if event.originator_version != job.version + 1 and not self.quarantine.rests(event):
            return True  # already applied
        return self.quarantine.apply(job, event, then=lambda _: self._refresh(job))

    def _forget(self, run_id: UUID) -> UUID | None:
        """A quarantined run no longer counts as active; returns its job if that leaves the job none."""
        self._runs.pop(run_id, None)
        for jid, runs in self.active.items():
            if run_id in runs:
                runs.discard(run_id)
                return None if runs else jid
        return None

    def _guard(self, job: JobState, action: Callable[[], object]) -> bool:
        """Do `action` for `job`; if it raises (a fire time no calendar holds, say), quarantine the job."""
        assert job.id is not None
        if self.quarantine.guard("job", job.id, job.version, action, "cannot compute its fire times"):
            return True
        self.entries.pop(job.id, None)
        return False

    def _fired(self, event: RunCreated | FireSkipped) -> UUID | None:
        """A scheduler (any) decided a fire time: it is handled, here too. Returns the job id if a run we counted
        as active lost the race to a skip, leaving the job with no active run."""
        fire_time = event.fire_time
        if fire_time is None:
            return None
        name = event.job if isinstance(event, FireSkipped) else event.definition["name"]
        jid = job_id(name)
        job = self.jobs.get(jid)
        if job is not None:
            job.fired(fire_time, event.reason if isinstance(event, FireSkipped) else None)
        entry = self.entries.get(jid)
        if entry is not None:
            if fire_time in entry.queued:
                entry.queued.remove(fire_time)
            if fire_time > entry.cursor:
                entry.cursor = fire_time
                self._push(entry, fire_time)
        runs = self.active.get(jid)
        if isinstance(event, FireSkipped) and runs and event.originator_id in runs:
            runs.discard(event.originator_id)  # the run we created for this fire time never came to be
            return None if runs else jid
        return None

    def _track(self, run: Run) -> UUID | None:
        """Keep `active` in line with `run`; returns its job id if that job has no active run left."""
        jid = job_id(run.job)
        if run.cancelled or run.complete:
            self._runs.pop(run.id, None)
            runs = self.active.get(jid, set())
            runs.discard(run.id)
            return None if runs else jid
        self._runs[run.id] = run
        self.active.setdefault(jid, set()).add(run.id)
        return None

    def _refresh(self, job: JobState) -> None:
        """(Re)compute a job's place on the heap after its definition or schedule changed."""
        old = self.entries.pop(job.id, None) if job.id is not None else None
        definition = job.definition
        if not job.exists or definition is None or definition.schedule is None or job.scheduled_at is None:
            return
        schedule = Schedule.from_dict(definition.schedule)
        cursor = max(job.scheduled_at, job.last_fire or job.scheduled_at)
        generation = next(self._seq)  # never reused: an entry from an earlier scheduled period stays stale
        entry = Entry(job, schedule, cursor, generation, queued=old.queued if old else [])
        self.entries[job.id] = entry
        self._push(entry, cursor)

    def _push(self, entry: Entry, after: datetime) -> None:
        assert entry.job.scheduled_at is not None and entry.job.id is not None
        fire = entry.schedule.next_fire(after, entry.job.scheduled_at)
        if fire is not None:
            heapq.heappush(self._heap, (fire, next(self._seq), entry.job.id, entry.generation))

    # ---- decisions ----

    def decide(self, now: datetime) -> list[Event]:
        """The runs to create (and fires to skip) for every fire time due by `now`."""
        events: list[Event] = []
        while self._heap and self._heap[0][0] <= now and len(events) < MAX_PER_DECISION:
            fire, _, jid, generation = heapq.heappop(self._heap)
            entry = self.entries.get(jid)
            if entry is None or entry.generation != generation or fire <= entry.cursor:
                continue  # stale: the job changed or this fire time was handled
            self._guard(entry.job, functools.partial(self._decide_fire, entry, fire, now, events))
        return events

    def _decide_fire(self, entry: Entry, fire: datetime, now: datetime, events: list[Event]) -> None:
        for due in self._catch_up(entry, fire):
            events.extend(self._fire(entry, due, now, missed=due < self.started_at))
        entry.cursor = max(entry.cursor, fire)
        self._push(entry, entry.cursor)

    def _catch_up(self, entry: Entry, fire: datetime) -> list[datetime]:
        """The fire times to run now: `fire`, or, the first time, what the misfire policy makes of missed ones."""
        if entry.caught_up or fire >= self.started_at:
            entry.caught_up = True
            return [fire]
        entry.caught_up = True
        assert entry.job.scheduled_at is not None
        missed = misfired(entry.schedule, entry.cursor, entry.job.scheduled_at, self.started_at)
        if missed:
            entry.cursor = missed[-1]  # run-all handles the rest on the next pops, from here
        else:
            entry.cursor = self.started_at
        return missed

    def _fire(self, entry: Entry, fire: datetime, now: datetime, missed: bool) -> list[Event]:
        """Create the run for `fire`, or queue or skip it by the overlap policy. Missed fire times that the misfire
        policy keeps do not skip one another (`skip` would leave only the first of a run-all), but a run still
        active from before the downtime holds them back like any other."""
        jid = entry.job.id
        assert jid is not None
        overlap, active = entry.schedule.overlap, self.active.get(jid)
        if not active or overlap == "allow" or (missed and overlap == "skip" and active <= entry.backfill):
            event = self._create(entry, fire, now)
            if missed:
                entry.backfill |= {event.originator_id}
            return [event]
        if overlap == "queue":
            if len(entry.queued) < MAX_QUEUED:
                entry.queued.append(fire)
                return []
            reason = f"skipped: {MAX_QUEUED} fire times already queued behind the active run"
        else:
            reason = "skipped: the previous run is still active"
        return [FireSkipped(originator_id=scheduled_run_id(jid, fire), originator_version=1, timestamp=now,
                            job=entry.job.definition.name if entry.job.definition else "", fire_time=fire,
                            reason=reason)]

    def release(self, jid: UUID, now: datetime) -> list[Event]:
        """The job's last active run ended: start its oldest queued fire time."""
        entry = self.entries.get(jid)
        if entry is None or not entry.queued or self.active.get(jid):
            return []
        events: list[Event] = []
        self._guard(entry.job, lambda: events.append(self._create(entry, entry.queued[0], now)))
        return events

    def _create(self, entry: Entry, fire: datetime, now: datetime) -> RunCreated:
        job = entry.job
        assert job.id is not None and job.definition is not None
        event = Run.create(scheduled_run_id(job.id, fire), job.definition, job.version, {}, job.owner,
                           entry.schedule.due_at(fire, str(job.id)), now, fire_time=fire)
        self.active.setdefault(job.id, set()).add(event.originator_id)  # count it before the log echoes it
        return event

    def next_wake(self) -> datetime | None:
        return self._heap[0][0] if self._heap else None
