"""What a client writes: load what it decides on, decide with the domain, append.

The Python API (and so the CLI) and the simulator's users both write through these commands, so every write a
person makes passes the same validation gateway and the same conflict handling. A concurrent writer makes an append
fail with Conflict rather than corrupt anything; cancelling decides again on the fresh run.
"""

import contextlib
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID, uuid5

from actorbatch.clock import Clock, random_id, random_ids
from actorbatch.domain.events import job_id
from actorbatch.domain.jobfile import check_unique, validate_definition
from actorbatch.domain.jobs import (
    JobAdded,
    JobDefinition,
    JobRemoved,
    JobReplaced,
    JobScheduled,
    JobState,
    JobUnscheduled,
)
from actorbatch.domain.limits import MAX_KEY_CHARS, check_params, check_run, check_text, check_time
from actorbatch.domain.notifications import Notification
from actorbatch.domain.quarantine import Quarantined
from actorbatch.domain.recurrence import Schedule, backfill_fires
from actorbatch.domain.retries import retry
from actorbatch.domain.runs import Run, RunCancelled, RunCreated, scheduled_run_id
from actorbatch.domain.servers import DrainRequested
from actorbatch.errors import ActorbatchError, Conflict, InvalidJob, Moved, NotFound
from actorbatch.node.access import Guard
from actorbatch.node.ports import EventLog
from actorbatch.node.users import UserCommands

CANCEL_ATTEMPTS = 20
MAX_REMEMBERED_JOBS = 256  # jobs a submitter keeps between submits (then it forgets them all)


class Backfilled(NamedTuple):
    """A fire time of a backfill, its run's id, and whether the backfill created it (False: it existed)."""

    fire_time: datetime
    run_id: UUID
    created: bool


def keyed_run_id(job: str, key: str) -> UUID:
    """The one id of the run submitted to `job` under an idempotency `key`."""
    return uuid5(job_id(job), f"key:{key}")


class Commands:
    """The writes of one user, on one log, with time and fresh ids from the given gateways. Each is checked by
    the guard first: a refusal records `access.denied` and raises PermissionDenied."""

    def __init__(self, log: EventLog, user: str, clock: Clock, new_id: Callable[[], UUID]) -> None:
        self.log, self.user, self.clock, self.new_id = log, user, clock, new_id
        self.guard = Guard(log, clock, new_id)
        self.users = UserCommands(self.guard, user)
        self._jobs: dict[str, tuple[JobState, dict[str, Any]]] = {}  # as a submit last read them, with the
        # definition as plain data (the runs' snapshot, shared by them); each use is checked by its append

    def _grounds(self, name: str) -> tuple[JobState, dict[str, Any], dict[UUID, int]]:
        """The job to submit runs of with its definition as the runs' snapshot, and what a submit relies on, each
        with its version: the job, and the guard's grounds for letting the user create runs. Both as an earlier
        submit read them where it can: the submit appends on condition that none of them moved
        (`EventStore.append_if`); if one did, `_forget` and again."""
        remembered = self._jobs.get(name)
        if remembered is None:
            job = self.job(name)
            assert job.definition is not None
            if len(self._jobs) >= MAX_REMEMBERED_JOBS:
                self._jobs.clear()
            remembered = self._jobs[name] = (job, job.definition.to_dict())
        job, snapshot = remembered
        grounds = self.guard.vouch(self.user, RunCreated.ACTION, name, job=name)
        return job, snapshot, {job.id: job.version, **grounds}

    def _forget(self, name: str) -> None:
        self._jobs.pop(name, None)
        self.guard.forget()

    def job(self, name: str) -> JobState:
        """The job as the log has it; NotFound if there is none (or it was removed)."""
        job = self.log.load(JobState, job_id(name))
        if job is None or not job.exists:
            raise NotFound(f"no job named {name!r}")
        return job

    def add_jobs(self, jobs: Iterable[JobDefinition], replace: bool = False) -> list[str]:
        """Register jobs in one transaction: all of them or, on any error, none. Returns, per job, whether it was
        `added` or `replaced`."""
        checked = [validate_definition(job) for job in jobs]  # all of them before anything is written
        check_unique(checked, "in one call")
        now, events = self.clock.now(), []
        for job in checked:
            current = self.log.load(JobState, job_id(job.name)) or JobState()
            version: dict[str, Any] = {"originator_id": job_id(job.name), "originator_version": current.version + 1,
                                       "timestamp": now, "definition": job.to_dict(), "user": self.user}
            if current.exists and not replace:
                raise ActorbatchError(f"job {job.name!r} already exists; use --replace to change it")
            action = JobReplaced.ACTION if current.exists else JobAdded.ACTION
            self.guard.check(self.user, action, job.name, job=job.name)
            events.append(JobReplaced(**version) if current.exists else JobAdded(**version))
        self.log.append(*events)
        return ["replaced" if isinstance(e, JobReplaced) else "added" for e in events]

    def remove_job(self, name: str, cancel: Iterable[UUID] = ()) -> None:
        """Remove the job and, in the same transaction, cancel the runs `cancel` names (those already over are
        left as they are); a job that is quarantined (an event of it cannot be read or folded) is put to rest."""
        self.guard.check(self.user, JobRemoved.ACTION, name, job=name)
        try:
            version = self.job(name).version
        except Quarantined as quarantined:
            version = quarantined.last_version
        now = self.clock.now()
        cancellations = [event for run_id in cancel if (event := self._cancellation(run_id, quiet=True))]
        self.log.append(JobRemoved(originator_id=job_id(name), originator_version=version + 1, timestamp=now,
                                   user=self.user), *cancellations)

    def schedule(self, name: str, *, restart: bool = False) -> bool:
        """Start the job's schedule (fire times from now on); `restart` also restarts a running one. Idempotent:
        False (nothing written) if it is scheduled already and not restarted."""
        job = self.job(name)
        assert job.definition is not None
        self.guard.check(self.user, JobScheduled.ACTION, name, job=name)
        if job.definition.schedule is None:
            raise ActorbatchError(f"job {name!r} has no [schedule]; add one with `job add --replace`")
        if job.scheduled_at is not None and not restart:
            return False
        self.log.append(JobScheduled(originator_id=job.id, originator_version=job.version + 1,
                                     timestamp=self.clock.now(), user=self.user))
        return True

    def unschedule(self, name: str) -> bool:
        """Stop future runs; fire times while unscheduled never exist, so they are never missed. Idempotent:
        False (nothing written) if it is not scheduled."""
        job = self.job(name)
        self.guard.check(self.user, JobUnscheduled.ACTION, name, job=name)
        if job.scheduled_at is None:
            return False
        self.log.append(JobUnscheduled(originator_id=job.id, originator_version=job.version + 1,
                                       timestamp=self.clock.now(), user=self.user))
        return True

    def run_job(self, name: str, params: Mapping[str, Any] | None = None, at: datetime | None = None,
                key: str | None = None) -> UUID:
        """Create a run now, or due at `at` (aware); returns its id. A `key` makes the submit idempotent: the run
        id derives from (job, key), so a repeated key, however many race, returns the first run.

        One transaction: the run is appended on condition that the job, the user's grounds to run it and (with a
        key) the run itself are as this call saw them (see `_grounds`)."""
        checked, due_at = check_run(params, at)
        run_id: UUID | None = None
        for _ in range(CANCEL_ATTEMPTS):
            job, snapshot, unchanged = self._grounds(name)
            assert job.definition is not None
            if run_id is None:
                run_id = self.new_id() if key is None else keyed_run_id(name, check_text(key, "key", MAX_KEY_CHARS))
            if key is not None:
                unchanged[run_id] = 0  # no run under this key yet
            now = self.clock.now()
            event = Run.create(run_id, job.definition, job.version, checked, self.user, due_at or now, now,
                               snapshot=snapshot)
            try:
                self.log.append_if(unchanged, event)
                return run_id
            except Moved as error:
                if error.moved == {run_id}:
                    return run_id  # the key's run exists, and nothing else changed
                self._forget(name)
            except Conflict:
                if key is None or not self.log.events(run_id):
                    raise
                return run_id
        raise ActorbatchError(f"job {name!r} keeps changing; try again")

    def retry(self, run_id: UUID, *, everything: bool = False) -> UUID:
        """A new run of the finished run's job version and params (see `domain.retries`); returns its id."""
        run = self.log.load(Run, run_id)
        if run is None:
            raise NotFound(f"no run with id {run_id}")
        self.guard.check(self.user, RunCreated.ACTION, run.job, job=run.job)
        created, link = retry(run, self.new_id(), self.user, self.clock.now(), everything=everything)
        self.log.append(created, link)  # a concurrent retry of the same run takes the link's version: Conflict
        return created.originator_id

    def backfill(self, name: str, start: datetime, end: datetime, *, dry_run: bool = False) -> list[Backfilled]:
        """One run per fire time of the job's schedule in [start, end), oldest first, with the scheduler's ids:
        fire times that have a run (or a skip) already are left alone, so a repeat or a racing scheduler never
        makes a second one. All in one transaction; a scheduler that wins a race meanwhile makes it decide again."""
        self.guard.check(self.user, "job.backfill", name, job=name)
        for _ in range(CANCEL_ATTEMPTS):
            job = self.job(name)
            assert job.definition is not None and job.id is not None
            if job.definition.schedule is None:
                raise ActorbatchError(f"job {name!r} has no [schedule]: there are no fire times to backfill")
            schedule = Schedule.from_dict(job.definition.schedule)
            now = self.clock.now()
            if check_time(end, "--to") > now:
                raise InvalidJob("--to: a backfill fills the past; the scheduler creates the runs from now on")
            fires = backfill_fires(schedule, check_time(start, "--from"), end, job.scheduled_at or start)
            events, found = [], []
            for fire in fires:
                run_id = scheduled_run_id(job.id, fire)
                created = not self.log.events(run_id)
                found.append(Backfilled(fire, run_id, created))
                if created:
                    due_at = schedule.due_at(fire, str(job.id))
                    events.append(Run.create(run_id, job.definition, job.version, {}, self.user, due_at, now,
                                             fire_time=fire))
            if dry_run:
                return found
            try:
                self.log.append(*events)
                return found
            except Conflict:
                continue
        raise ActorbatchError(f"job {name!r} keeps changing; try again")

    def run_many(self, name: str, params: Iterable[Mapping[str, Any] | None], at: datetime | None = None
                 ) -> list[UUID]:
        """Create one run per params mapping, all due at `at` (None: now), in one transaction: all of them, or
        (any refused) none. Each run's params are checked; the due time, which they share, once."""
        checked = [check_params({} if p is None else p, "params") for p in params]
        due_at = None if at is None else check_time(at, "at")
        for _ in range(CANCEL_ATTEMPTS):
            job, snapshot, unchanged = self._grounds(name)
            assert job.definition is not None
            now = self.clock.now()
            ids = random_ids(len(checked)) if self.new_id is random_id else [self.new_id() for _ in checked]
            events = Run.create_many(ids, job.definition, job.version, checked, due_at or now, self.user, now,
                                     snapshot)
            try:
                self.log.append_if(unchanged, *events)
                return ids
            except Moved:
                self._forget(name)
        raise ActorbatchError(f"job {name!r} keeps changing; try again")

    def cancel(self, run_id: UUID) -> None:
        """Cancel the run. A quarantined run (an event of it cannot be read or folded) is put to rest: the
        cancellation follows its last stored event."""
        for _ in range(CANCEL_ATTEMPTS):
            event = self._cancellation(run_id)
            assert event is not None
            try:
                self.log.append(event)
                return
            except Conflict:
                continue  # a task moved on meanwhile: decide again on the fresh run
        raise ActorbatchError(f"run {run_id} keeps changing; try again")

    def _cancellation(self, run_id: UUID, quiet: bool = False) -> RunCancelled | None:
        """The event that cancels the run; `quiet` (removing its job, which job.manage covers): None for a run that
        is already over, rather than an error, and no check of run.cancel."""
        now = self.clock.now()
        try:
            run = self.log.load(Run, run_id)
        except Quarantined as quarantined:
            if not quiet:
                self.guard.check(self.user, RunCancelled.ACTION, str(run_id))
            return RunCancelled(originator_id=run_id, originator_version=quarantined.last_version + 1, timestamp=now,
                                user=self.user)
        if run is None:
            raise NotFound(f"no run with id {run_id}")
        if not quiet:
            self.guard.check(self.user, RunCancelled.ACTION, str(run_id), owner=run.user, job=run.job)
        event = run.cancel(self.user, now)
        if event is None and not quiet:
            raise ActorbatchError(f"run {run_id} is already {run.status(now)}")
        return event

    def drain(self, server: str) -> None:
        """Ask the server of that name to finish what it runs, take nothing new, and stop."""
        self.guard.check(self.user, DrainRequested.ACTION, server)
        self.log.append(DrainRequested(originator_id=self.new_id(), originator_version=1, timestamp=self.clock.now(),
                                       server=server, user=self.user))

    def read_messages(self, messages: Iterable[Notification]) -> None:
        """Mark the acting user's messages read; one another reader marked meanwhile stays as it is."""
        now = self.clock.now()
        events = [e for e in (m.mark_read(self.user, now) for m in messages if m.owner == self.user) if e]
        try:
            self.log.append(*events)
        except Conflict:
            for event in events:
                with contextlib.suppress(Conflict):
                    self.log.append(event)
