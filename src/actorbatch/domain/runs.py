"""The Run aggregate: one execution of a job, and the state machine of its tasks.

Commands are pure functions of the state and `now` that return the event to record (or None when there is
nothing to do); `apply` folds a recorded event into the state. Nothing here reads a clock or touches storage.
"""

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

from actorbatch.domain.events import Event
from actorbatch.domain.jobs import JobDefinition
from actorbatch.domain.statuses import RunStatus, TaskStatus
from actorbatch.domain.tasks import TERMINAL, TaskRun, condition_met, fails_run, verdict
from actorbatch.frozen import frozen


def scheduled_run_id(job: UUID, fire_time: datetime) -> UUID:
    """The one id of the run for a fire time: racing schedulers all compute it, exactly one creates it."""
    return uuid5(job, fire_time.astimezone(UTC).isoformat())


@frozen
class RunEvent(Event):
    """An event of the Run aggregate."""


@frozen
class RunCreated(RunEvent):
    ACTION = "run.created"
    definition: Mapping[str, Any]
    job_version: int  # the snapshot is that version of the job: read models store it once per version
    params: Mapping[str, Any]
    user: str
    due_at: datetime
    fire_time: datetime | None


@frozen
class RetryCreated(RunCreated):
    """A run created by `run retry`: the job version and params of `retry_of`, whose tasks named in `kept`
    keep their success and result (task name -> result) instead of running again."""

    ACTION = "run.created"
    retry_of: UUID
    kept: Mapping[str, Any]


@frozen
class RunRetried(RunEvent):
    """The link from a finished run to a retry of it."""

    ACTION = "run.retried"
    retry_id: UUID
    user: str


@frozen
class TaskClaimed(RunEvent):
    """Attempt `attempt` of `task` is leased to `server` until `lease_until` (extended by its heartbeats)."""

    ACTION = "task.claimed"
    task: str
    attempt: int
    server: str
    starts_at: datetime  # the body starts then: at the claim, or when the task is due if claimed early
    lease_until: datetime


@frozen
class TaskSucceeded(RunEvent):
    ACTION = "task.succeeded"
    task: str
    attempt: int
    result: Any


@frozen
class TaskFailed(RunEvent):
    ACTION = "task.failed"
    task: str
    attempt: int
    exit_status: str


@frozen
class TaskDenied(RunEvent):
    """The run's acting user lacked `privilege` when the task would have started: it fails without running (no
    attempt, no retry), exit status `missing privilege: NAME`."""

    ACTION = "task.denied"
    task: str
    privilege: str


@frozen
class AttemptLost(RunEvent):
    """The holder stopped renewing its lease: the attempt is over, whatever it may still be doing."""

    ACTION = "task.lost"
    task: str
    attempt: int
    server: str


@frozen
class ResultIgnored(RunEvent):
    """Fencing: a result reported under an attempt that is no longer current is kept for the record only."""

    ACTION = "task.result_ignored"
    task: str
    attempt: int
    outcome: str


@frozen
class RunCancelled(RunEvent):
    ACTION = "run.cancelled"
    user: str


@frozen
class FireSkipped(Event):
    """The scheduler did not start a run for `fire_time` (overlap policy `skip`).

    It takes the id (and version 1) the run would have had, so racing schedulers record one decision per fire time:
    either this or the run, never both.
    """

    ACTION = "job.fire_skipped"
    job: str
    fire_time: datetime
    reason: str


@frozen
class LogWritten(Event):
    """Lines an attempt printed or logged, and when; its own stream (id `log_id(run, task, attempt)`), so never
    contended. Version 1 had no `times`: its lines read as written when the event was."""

    ACTION = "run.logged"
    class_version = 2
    run_id: UUID
    task: str
    attempt: int
    lines: tuple[str, ...]
    times: tuple[datetime, ...]

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["times"] = ()


TaskEvent = TaskClaimed | TaskSucceeded | TaskFailed | AttemptLost | ResultIgnored | TaskDenied


_RUN_FIELDS = ("id", "version", "job_version", "params", "user", "due_at", "created_at", "fire_time", "started_at",
               "ended_at", "cancelled", "retry_of", "retried_by")
_NEWER_FIELDS = {"retry_of": None, "retried_by": ()}  # what read models written before them hold


class Run:
    """One execution of a job: its definition snapshot, parameters, due time and task states."""

    def __init__(self) -> None:
        self.id: UUID = UUID(int=0)
        self.version = 0
        self.definition: JobDefinition | None = None
        self.job_version = 0
        self.params: Mapping[str, Any] = {}
        self.user = ""
        self.due_at: datetime | None = None
        self.created_at: datetime | None = None
        self.fire_time: datetime | None = None
        self.started_at: datetime | None = None
        self.ended_at: datetime | None = None
        self.cancelled = False
        self.retry_of: UUID | None = None
        self.retried_by: tuple[UUID, ...] = ()
        self.tasks: dict[str, TaskRun] = {}
        self._index()

    def _index(self) -> None:
        """Derive the indexes that keep each event's work proportional to the tasks it touches, not to the run:
        children by parent (whose conditions a task's end may decide) and the counts that `complete` and `status`
        need. Not part of `to_dict`: they follow from the tasks and the definition."""
        self._children: dict[str, list[tuple[str, str]]] = {}  # parents not ended yet -> (child, condition)
        self._tallies: dict[str, list[int]] = {}  # waiting task -> [parents met, parents failed] its conditions
        for state in self.tasks.values():
            for parent, condition in state.spec.after:
                parent_status = self.tasks[parent].status
                if parent_status not in TERMINAL:
                    self._children.setdefault(parent, []).append((state.spec.name, condition))
                elif state.status == TaskStatus.WAITING:
                    tally = self._tallies.setdefault(state.spec.name, [0, 0])
                    tally[0 if condition_met(parent_status, condition) else 1] += 1
        self._open = sum(t.status not in TERMINAL for t in self.tasks.values())
        self._failed = sum(fails_run(t) for t in self.tasks.values())

    @property
    def job(self) -> str:
        assert self.definition is not None
        return self.definition.name

    @property
    def complete(self) -> bool:
        return bool(self.tasks) and self._open == 0

    def status(self, now: datetime) -> RunStatus:
        """`scheduled` (due later), `running` (due, not complete), `succeeded`, `failed` or `cancelled`."""
        if self.cancelled:
            return RunStatus.CANCELLED
        if self.complete:
            return RunStatus.FAILED if self._failed else RunStatus.SUCCEEDED
        assert self.due_at is not None
        return RunStatus.SCHEDULED if self.due_at > now and self.started_at is None else RunStatus.RUNNING

    def to_dict(self) -> dict[str, Any]:
        """The state as plain data, but for the definition (see `job_version`): read models keep it, so they fold
        with this very class."""
        data = {name: getattr(self, name) for name in _RUN_FIELDS}
        data["job"] = self.job
        data["tasks"] = {name: t.to_dict() for name, t in self.tasks.items()}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], definition: JobDefinition) -> "Run":
        run = cls()
        for name in _RUN_FIELDS:
            setattr(run, name, data[name] if name in data else _NEWER_FIELDS[name])
        run.definition = definition
        run.tasks = {spec.name: TaskRun.from_dict(spec, data["tasks"][spec.name]) for spec in run.definition.tasks}
        run._index()
        return run

    # ---- commands: decide, return the event, change nothing ----

    @staticmethod
    def create(run_id: UUID, definition: JobDefinition, job_version: int, params: Mapping[str, Any], user: str,
               due_at: datetime, now: datetime, fire_time: datetime | None = None,
               snapshot: Mapping[str, Any] | None = None) -> RunCreated:
        """`snapshot`: `definition.to_dict()`, if the caller keeps it already (events share it; none changes it)."""
        return RunCreated(originator_id=run_id, originator_version=1, timestamp=now,
                          definition=definition.to_dict() if snapshot is None else snapshot, job_version=job_version,
                          params=dict(params), user=user, due_at=due_at, fire_time=fire_time)

    @staticmethod
    def create_many(run_ids: Iterable[UUID], definition: JobDefinition, job_version: int,
                    params: Iterable[Mapping[str, Any]], due_at: datetime, user: str, now: datetime,
                    snapshot: Mapping[str, Any] | None = None) -> list[RunCreated]:
        """`create` for one run per params mapping, each with the next id of `run_ids`, all due at `due_at`:
        every event shares one snapshot of the definition. Each is a copy of the first with its own id and params
        (what `dataclasses.replace` makes, without calling `__init__` again: a bulk submit's largest cost); a
        params dict is kept as given (the caller's checked copy), any other mapping copied into one."""
        first = Run.create(UUID(int=0), definition, job_version, {}, user, due_at, now, snapshot=snapshot)
        fields = vars(first)
        events = []
        for run_id, given in zip(run_ids, params, strict=False):
            event = object.__new__(RunCreated)
            vars(event).update(fields, originator_id=run_id, params=given if type(given) is dict else dict(given))
            events.append(event)
        return events

    def claimable(self, now: datetime) -> list[str]:
        """Tasks a server may claim now: ready, the run due, any retry delay over."""
        return [name for name in self.tasks if self.can_claim(name, now)]

    def can_claim(self, task: str, now: datetime) -> bool:
        """Whether `task` is claimable now (see `claimable`), without looking at any other task."""
        if self.cancelled or self.due_at is None or self.due_at > now:
            return False
        state = self.tasks[task]
        return state.status == TaskStatus.READY and (state.not_before is None or state.not_before <= now)

    def claim(self, task: str, server: str, now: datetime, lease_timeout_s: float, early_s: float = 0.0
              ) -> TaskClaimed:
        """Lease the task to `server`; up to `early_s` before it is due, so that it can start on the dot."""
        state = self.tasks[task]
        assert self.can_claim(task, now + timedelta(seconds=early_s)), f"{task} is not claimable"
        assert self.due_at is not None
        starts_at = max(now, self.due_at, state.not_before or now)
        return TaskClaimed(originator_id=self.id, originator_version=self.version + 1, timestamp=now,
                           task=task, attempt=state.attempt + 1, server=server, starts_at=starts_at,
                           lease_until=starts_at + timedelta(seconds=lease_timeout_s))

    def deny(self, task: str, privilege: str, now: datetime) -> TaskDenied:
        """Fail a claimable task, unrun, because the acting user lacks `privilege`."""
        return TaskDenied(originator_id=self.id, originator_version=self.version + 1, timestamp=now, task=task,
                          privilege=privilege)

    def finish(self, task: str, attempt: int, now: datetime, *, exit_status: str | None,
               result: Any = None) -> Event:
        """Record the outcome of an attempt (`exit_status` None means success), fenced by attempt number."""
        state = self.tasks[task]
        common: dict[str, Any] = {"originator_id": self.id, "originator_version": self.version + 1, "timestamp": now,
                  "task": task, "attempt": attempt}
        if state.status != TaskStatus.RUNNING or state.attempt != attempt:
            outcome = TaskStatus.SUCCEEDED.value if exit_status is None else exit_status
            return ResultIgnored(**common, outcome=outcome)
        if exit_status is None:
            return TaskSucceeded(**common, result=result)
        return TaskFailed(**common, exit_status=exit_status)

    def expire(self, task: str, now: datetime, lease_until: datetime) -> AttemptLost | None:
        """Reap the running attempt of `task` if its lease (as extended by heartbeats) ran out before `now`."""
        state = self.tasks[task]
        if state.status != TaskStatus.RUNNING or lease_until >= now:
            return None
        assert state.server is not None
        return AttemptLost(originator_id=self.id, originator_version=self.version + 1, timestamp=now,
                           task=task, attempt=state.attempt, server=state.server)

    def cancel(self, user: str, now: datetime) -> RunCancelled | None:
        if self.cancelled or self.complete:
            return None
        return RunCancelled(originator_id=self.id, originator_version=self.version + 1, timestamp=now,
                            user=user)

    # ---- the fold ----

    def apply(self, event: RunEvent) -> list[str]:
        """Fold a recorded event; returns the tasks whose state it changed (every task for a new or cancelled run),
        so that indexes kept beside the run follow it without visiting the other tasks."""
        assert event.originator_version == self.version + 1, (
            f"run {event.originator_id}: event v{event.originator_version} after v{self.version}")
        self.id, self.version = event.originator_id, event.originator_version
        now = event.timestamp
        touched: list[str]
        if isinstance(event, RunCreated):
            self._create(event, now)
            touched = list(self.tasks)
        elif isinstance(event, RunCancelled):
            self._cancel(event.user, now)
            touched = list(self.tasks)
        elif isinstance(event, RunRetried):
            self.retried_by = (*self.retried_by, event.retry_id)
            touched = []
        else:
            assert isinstance(event, TaskEvent)
            self._apply_task_event(event, now)
            touched = [event.task]
        self._settle(touched)
        if self.complete and self.ended_at is None:
            self.ended_at = now
        return touched

    def _create(self, event: RunCreated, now: datetime) -> None:
        self.definition = _definition(event)
        self.job_version = event.job_version
        self.params, self.user, self.due_at = event.params, event.user, event.due_at
        self.created_at, self.fire_time = now, event.fire_time
        self.tasks = {spec.name: TaskRun(spec) for spec in self.definition.tasks}
        self._index()
        kept = event.kept if isinstance(event, RetryCreated) else {}
        self.retry_of = event.retry_of if isinstance(event, RetryCreated) else None
        for state in self.tasks.values():
            if state.spec.name in kept:  # its parents are kept too: its children are decided as the run settles
                self._set(state, TaskStatus.SUCCEEDED)
                state.result, state.ended_at = kept[state.spec.name], now
            elif not state.spec.after:
                self._set(state, TaskStatus.READY)

    def _cancel(self, user: str, now: datetime) -> None:
        self.cancelled = True
        for state in self.tasks.values():
            if state.status == TaskStatus.RUNNING:
                self._close_attempt(state.spec.name, state.attempt, TaskStatus.CANCELLED.value, now)
            if state.status not in TERMINAL:
                self._end(state, TaskStatus.CANCELLED, f"cancelled by {user}", now)

    def _apply_task_event(self, event: TaskEvent, now: datetime) -> None:
        if isinstance(event, TaskClaimed):
            state = self.tasks[event.task]
            self._set(state, TaskStatus.RUNNING)
            state.attempt, state.server = event.attempt, event.server
            started = event.starts_at
            state.lease_until, state.started_at, state.ended_at = event.lease_until, started, None
            state.history.append({"attempt": event.attempt, "server": event.server, "started_at": started,
                                  "ended_at": None, "outcome": None})
            self.started_at = self.started_at or started
        elif isinstance(event, TaskSucceeded):
            self._close_attempt(event.task, event.attempt, TaskStatus.SUCCEEDED.value, now)
            self._end(self.tasks[event.task], TaskStatus.SUCCEEDED, None, now)
            self.tasks[event.task].result = event.result
        elif isinstance(event, TaskFailed):
            self._close_attempt(event.task, event.attempt, event.exit_status, now)
            state = self.tasks[event.task]
            state.failures += 1
            if state.failures <= state.spec.retries:
                self._retry(state, event.exit_status, now + timedelta(seconds=state.spec.retry_wait_s(state.failures)))
            else:
                self._end(state, TaskStatus.FAILED, event.exit_status, now)
        elif isinstance(event, AttemptLost):
            state = self.tasks[event.task]
            state.lost += 1
            exit_status = f"lost: server {event.server} stopped responding"
            self._close_attempt(event.task, event.attempt, exit_status, now)
            if state.lost <= state.spec.lost_retries:
                self._retry(state, exit_status, now)
            else:
                self._end(state, TaskStatus.FAILED, exit_status, now)
        elif isinstance(event, TaskDenied):
            self._end(self.tasks[event.task], TaskStatus.FAILED, f"missing privilege: {event.privilege}", now)
        elif isinstance(event, ResultIgnored):
            for entry in self.tasks[event.task].history:
                if entry["attempt"] == event.attempt:
                    entry["late_result"] = event.outcome

    def _close_attempt(self, task: str, attempt: int, outcome: str, now: datetime) -> None:
        """End the attempt's history entry; `outcome` is stored as it is, so a plain string."""
        entry = self.tasks[task].history[-1]
        assert entry["attempt"] == attempt
        entry["ended_at"], entry["outcome"] = now, outcome

    def _retry(self, state: TaskRun, exit_status: str, not_before: datetime) -> None:
        self._set(state, TaskStatus.READY)
        state.exit_status, state.not_before = exit_status, not_before
        state.server = state.lease_until = None

    def _end(self, state: TaskRun, status: TaskStatus, exit_status: str | None, now: datetime) -> None:
        self._set(state, status)
        state.exit_status, state.ended_at = exit_status, now
        state.lease_until = None

    def _set(self, state: TaskRun, status: TaskStatus) -> None:
        """Every change of a task's status goes through here, to keep the counts right."""
        self._open += (status not in TERMINAL) - (state.status not in TERMINAL)
        self._failed -= fails_run(state)
        state.status = status
        self._failed += fails_run(state)

    def _settle(self, touched: list[str]) -> None:
        """Decide the waiting children of tasks that have ended, and theirs in turn when they are skipped; the
        tasks decided are added to `touched`. A task's conditions depend only on its parents, and a parent's
        status stops changing once it has ended, so each dependency is counted once, when its parent ends."""
        ended = [name for name in touched if self.tasks[name].status in TERMINAL and name in self._children]
        while ended:
            parent = ended.pop()
            parent_status = self.tasks[parent].status
            for child, condition in self._children.pop(parent, ()):
                state = self.tasks[child]
                if state.status != TaskStatus.WAITING:
                    continue
                tally = self._tallies.setdefault(child, [0, 0])
                tally[0 if condition_met(parent_status, condition) else 1] += 1
                decided = verdict(state.spec, tally[0], tally[1])
                if decided is None:
                    continue
                del self._tallies[child]
                touched.append(child)
                if decided:
                    self._set(state, TaskStatus.READY)
                else:
                    self._set(state, TaskStatus.SKIPPED)
                    state.exit_status = "skipped: conditions can no longer be met"
                    ended.append(child)


_DEFINITIONS: dict[tuple[Any, int], tuple[Mapping[str, Any], JobDefinition]] = {}  # by (job name, job version)


def _definition(event: RunCreated) -> JobDefinition:
    """The definition a run was created with. Thousands of runs carry the same snapshot: one equal to the last
    seen for its job version gives the same (frozen) definition, built once."""
    data = event.definition
    key = (data["name"], event.job_version)
    found = _DEFINITIONS.get(key)
    if found is not None and found[0] == data:
        return found[1]
    definition = JobDefinition.from_dict(data)
    if len(_DEFINITIONS) >= 1024:
        _DEFINITIONS.clear()
    _DEFINITIONS[key] = (data, definition)
    return definition
