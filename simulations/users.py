"""The people at the keyboards: they add the jobs, run some now or later, cancel runs, unschedule and reschedule;
and, where a scenario asks for one, a hostile user tries values at the limits and past them.

They write through the product's own commands (`actorbatch.node.commands`, which `actorbatch.Client` calls too),
as one more writer that the servers hear through their followers. Their connection never fails: faults are for the
servers.
"""

import contextlib
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from actorbatch.domain.events import job_id
from actorbatch.domain.jobfile import parse_job
from actorbatch.errors import ActorbatchError, Conflict, InvalidJob
from actorbatch.node.commands import Commands
from simulations.checkers import CheckFailed
from simulations.eventloop import Loop, us
from simulations.log import ServerStore, SimLog, WriteFaults
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


class _LoopClock:
    """The users' clock: the loop's virtual time."""

    def __init__(self, loop: Loop) -> None:
        self.loop = loop

    def now(self) -> datetime:
        return self.loop.now


@dataclass
class Users:
    loop: Loop
    log: SimLog
    views: Projection
    workload: Workload
    rng: random.Random

    def __post_init__(self) -> None:
        connection = ServerStore(self.log, WRITER, WriteFaults(random.Random(0), 0.0, 0.0, enabled=False),
                                 lambda: self.loop.now_us / 1e6)
        self.commands = Commands(connection, USER, _LoopClock(self.loop), self._new_id)
        self.backfilled = 0  # runs the users' backfills created

    def _new_id(self) -> uuid.UUID:
        """As random_id(), from the seed."""
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def drain(self, server: str) -> None:
        """`actorbatch server drain NAME`."""
        self.commands.drain(server)

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
        for at_s in self.workload.backfills:
            self.loop.at(us(at_s), self._backfill)

    def _add_jobs(self) -> None:
        self.commands.add_jobs(self.workload.jobs)

    def _submit(self, submission: Submission) -> None:
        self.commands.run_job(submission.job, {}, self.loop.now + timedelta(seconds=submission.due_in_s))

    def _hostile(self) -> None:
        """Through the gateway every user's input passes: values at the limits are written and must then work;
        values past them must be refused, with one line and without a write."""
        group = self.workload.jobs[0].group if self.workload.jobs else "default"
        job = self.views.jobs.get(job_id(HOSTILE_NAME))
        choice = self.rng.randrange(4)
        if choice == 0 or job is None or not job.exists:
            self.commands.add_jobs([parse_job(hostile_job(group))], replace=True)
        elif choice == 1:
            params, at = self.rng.choice(HOSTILE_RUNS)
            run_id = self.commands.run_job(HOSTILE_NAME, params, at)
            if at is not None:
                self.loop.at(self.loop.now_us + us(self.rng.uniform(1, 600)), partial(self._cancel_run, run_id))
        elif choice == 2:
            what, job_keys, task_keys = self.rng.choice(REFUSED_JOBS)
            self._refused(what, lambda: parse_job(hostile_job(group, job_keys, task_keys)))
        else:
            what, params, at = self.rng.choice(REFUSED_RUNS)
            self._refused(what, lambda: self.commands.run_job(HOSTILE_NAME, params, at))

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

    def _backfill(self) -> None:
        """Backfill the last hour of a scheduled job, after the moment it was scheduled (no fire time of its
        schedulers): fire times they decided already get no second run, missed ones (misfire policies) get one."""
        scheduled = [j for j in self.views.jobs.values() if j.scheduled_at is not None and j.definition is not None]
        if not scheduled:
            return
        job = self.rng.choice(scheduled)
        assert job.definition is not None and job.scheduled_at is not None
        start = max(job.scheduled_at + timedelta(microseconds=1), self.loop.now - timedelta(hours=1))
        if start < self.loop.now:
            with contextlib.suppress(Conflict):  # a scheduler won every retry: it made those runs itself
                self.backfilled += sum(b.created for b in self.commands.backfill(job.definition.name, start,
                                                                                  self.loop.now))

    def _cancel(self) -> None:
        if self.views.active:
            self._cancel_run(self.rng.choice(list(self.views.active)))

    def _cancel_run(self, run_id: uuid.UUID) -> None:
        with contextlib.suppress(ActorbatchError):  # it ended meanwhile, as a person finds out at the keyboard
            self.commands.cancel(run_id)

    def _unschedule(self, on_us: int) -> None:
        scheduled = [j for j in self.views.jobs.values() if j.scheduled_at is not None]
        if not scheduled:
            return
        job = self.rng.choice(scheduled)
        assert job.definition is not None
        name = job.definition.name
        if self._job_write(lambda: self.commands.unschedule(name)):
            self.loop.at(on_us, lambda: self._schedule(job.id, name))

    def _schedule(self, job_uuid: uuid.UUID, name: str) -> None:
        job = self.views.jobs[job_uuid]
        if job.exists and job.scheduled_at is None:
            self._job_write(lambda: self.commands.schedule(name))

    @staticmethod
    def _job_write(command: Callable[[], object]) -> bool:
        try:
            command()
        except Conflict:
            return False
        return True
