"""The people at the keyboards: they add the jobs, run some now or later, cancel runs, unschedule and reschedule;
and, where a scenario asks for one, a hostile user tries values at the limits and past them.

They write to the log the way `actorbatch.Client` does (load, decide with the domain, append, and on a conflict
decide again), as one more writer that the servers hear through their followers. Their connection never fails:
faults are for the servers.
"""

import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from actorbatch.domain.events import job_id
from actorbatch.domain.jobs import (
    JobAdded,
    JobDefinition,
    JobReplaced,
    JobScheduled,
    JobState,
    JobUnscheduled,
    parse_job,
)
from actorbatch.domain.limits import check_run
from actorbatch.domain.runs import Run
from actorbatch.errors import Conflict, InvalidJob
from simulations.checkers import CheckFailed
from simulations.eventloop import Loop, us
from simulations.log import SimLog
from simulations.projection import Projection
from simulations.workload import (
    HOSTILE_NAME,
    HOSTILE_RUNS,
    REFUSED_JOBS,
    REFUSED_RUNS,
    Submission,
    Workload,
    hostile_job,
)

WRITER = "users"
USER = "sim"
CANCEL_ATTEMPTS = 20  # as Client.cancel


@dataclass
class Users:
    loop: Loop
    log: SimLog
    views: Projection
    workload: Workload
    rng: random.Random

    def plan(self) -> None:
        """Put every action of the workload on the loop; jobs are added first, at the very start."""
        if self.workload.jobs:
            self.loop.at(0, self._add_jobs)
        for submission in self.workload.submissions:
            self.loop.at(us(submission.at_s), partial(self._submit, submission))
        for at_s in self.workload.cancels:
            self.loop.at(us(at_s), self._cancel)
        for off_s, on_s in self.workload.reschedules:
            self.loop.at(us(off_s), partial(self._unschedule, us(on_s)))
        for event in self.workload.recorded:
            self.loop.at(self.loop.to_us(event.timestamp), partial(self.log.append, [event], WRITER))
        for at, run_id in self.workload.recorded_cancels:
            self.loop.at(self.loop.to_us(at), partial(self._cancel_run, run_id))
        for at_s in self.workload.hostile:
            self.loop.at(us(at_s), self._hostile)

    def _add_jobs(self) -> None:
        now = self.loop.now
        self.log.append([JobAdded(originator_id=job_id(j.name), originator_version=1, timestamp=now,
                                  definition=j.to_dict(), user=USER) for j in self.workload.jobs], WRITER)

    def _submit(self, submission: Submission) -> None:
        self._run(self.views.jobs[job_id(submission.job)], {},
                  self.loop.now + timedelta(seconds=submission.due_in_s))

    def _hostile(self) -> None:
        """Through the gateway every user's input passes: values at the limits are written and must then work;
        values past them must be refused, with one line and without a write."""
        group = self.workload.jobs[0].group if self.workload.jobs else "default"
        job = self.views.jobs.get(job_id(HOSTILE_NAME))
        choice = self.rng.randrange(4)
        if choice == 0 or job is None or not job.exists:
            self._add_job(parse_job(hostile_job(group)))
        elif choice == 1:
            params, at = self.rng.choice(HOSTILE_RUNS)
            run_id = self._run(job, *check_run(params, at))
            if at is not None:
                self.loop.at(self.loop.now_us + us(self.rng.uniform(1, 600)), partial(self._cancel_run, run_id))
        elif choice == 2:
            what, job_keys, task_keys = self.rng.choice(REFUSED_JOBS)
            self._refused(what, lambda: parse_job(hostile_job(group, job_keys, task_keys)))
        else:
            what, params, at = self.rng.choice(REFUSED_RUNS)
            self._refused(what, lambda: check_run(params, at))

    def _refused(self, what: str, attempt: Callable[[], object]) -> None:
        head = self.log.head()
        try:
            attempt()
        except InvalidJob as error:
            if "\n" in str(error) or self.log.head() != head:
                raise CheckFailed("gateway", f"{what}: refused, but not in one line without a write: {error!r}",
                                  self.loop.now) from None
            return
        raise CheckFailed("gateway", f"{what} was accepted", self.loop.now)

    def _add_job(self, definition: JobDefinition) -> None:
        """As Client.add_jobs with replace: added, or replacing the job of that name."""
        current = self.views.jobs.get(job_id(definition.name)) or JobState()
        kind = JobReplaced if current.exists else JobAdded
        self.log.append([kind(originator_id=job_id(definition.name), originator_version=current.version + 1,
                              timestamp=self.loop.now, definition=definition.to_dict(), user=USER)], WRITER)

    def _run(self, job: JobState, params: Mapping[str, Any], due_at: datetime | None) -> uuid.UUID:
        assert job.definition is not None
        run_id = uuid.UUID(int=self.rng.getrandbits(128), version=4)  # as random_id(), from the seed
        now = self.loop.now
        self.log.append([Run.create(run_id, job.definition, job.version, params, USER, due_at or now, now)], WRITER)
        return run_id

    def _cancel(self) -> None:
        if self.views.active:
            self._cancel_run(self.rng.choice(list(self.views.active)))

    def _cancel_run(self, run_id: uuid.UUID) -> None:
        for _ in range(CANCEL_ATTEMPTS):
            run = self.log.load(Run, run_id)
            event = run.cancel(USER, self.loop.now) if run is not None else None
            if event is None:
                return
            try:
                self.log.append([event], WRITER)
                return
            except Conflict:
                continue  # a task moved on meanwhile: decide again on the fresh run

    def _unschedule(self, on_us: int) -> None:
        scheduled = [j for j in self.views.jobs.values() if j.scheduled_at is not None]
        if not scheduled:
            return
        job = self.rng.choice(scheduled)
        if self._append_job(job, JobUnscheduled):
            self.loop.at(on_us, lambda: self._schedule(job.id))

    def _schedule(self, job_uuid: uuid.UUID) -> None:
        job = self.views.jobs[job_uuid]
        if job.exists and job.scheduled_at is None:
            self._append_job(job, JobScheduled)

    def _append_job(self, job: JobState, kind: type[JobUnscheduled | JobScheduled]) -> bool:
        try:
            self.log.append([kind(originator_id=job.id, originator_version=job.version + 1,
                                  timestamp=self.loop.now, user=USER)], WRITER)
        except Conflict:
            return False
        return True
