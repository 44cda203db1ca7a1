"""The Run aggregate: one execution of a job, and the state machine of its tasks.

Commands are pure functions of the state and `now` that return the event to record (or None when there is
nothing to do); `apply` folds a recorded event into the state. Nothing here reads a clock or touches storage.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

from actorbatch.domain.events import Event
from actorbatch.domain.jobs import JobDefinition, TaskSpec

TERMINAL = frozenset({"succeeded", "failed", "skipped", "cancelled"})


def scheduled_run_id(job: UUID, fire_time: datetime) -> UUID:
    """The one id of the run for a fire time: racing schedulers all compute it, exactly one creates it."""
    return uuid5(job, fire_time.astimezone(UTC).isoformat())


@dataclass(frozen=True)
class RunEvent(Event):
    """An event of the Run aggregate."""


@dataclass(frozen=True)
class RunCreated(RunEvent):
    ACTION = "run.created"
    definition: Mapping[str, Any]
    job_version: int  # the snapshot is that version of the job: read models store it once per version
    params: Mapping[str, Any]
    user: str
    due_at: datetime
    fire_time: datetime | None


@dataclass(frozen=True)
class TaskClaimed(RunEvent):
    """Attempt `attempt` of `task` is leased to `server` until `lease_until` (extended by its heartbeats)."""

    ACTION = "task.claimed"
    task: str
    attempt: int
    server: str
    starts_at: datetime  # the body starts then: at the claim, or when the task is due if claimed early
    lease_until: datetime


@dataclass(frozen=True)
class TaskSucceeded(RunEvent):
    ACTION = "task.succeeded"
    task: str
    attempt: int
    result: Any


@dataclass(frozen=True)
class TaskFailed(RunEvent):
    ACTION = "task.failed"
    task: str
    attempt: int
    exit_status: str


@dataclass(frozen=True)
class AttemptLost(RunEvent):
    """The holder stopped renewing its lease: the attempt is over, whatever it may still be doing."""

    ACTION = "task.lost"
    task: str
    attempt: int
    server: str


@dataclass(frozen=True)
class ResultIgnored(RunEvent):
    """Fencing: a result reported under an attempt that is no longer current is kept for the record only."""

    ACTION = "task.result_ignored"
    task: str
    attempt: int
    outcome: str


@dataclass(frozen=True)
class RunCancelled(RunEvent):
    ACTION = "run.cancelled"
    user: str


@dataclass(frozen=True)
class FireSkipped(Event):
    """The scheduler did not start a run for `fire_time` (overlap policy `skip`).

    It takes the id (and version 1) the run would have had, so racing schedulers record one decision per fire time:
    either this or the run, never both.
    """

    ACTION = "job.fire_skipped"
    job: str
    fire_time: datetime
    reason: str


@dataclass(frozen=True)
class LogWritten(Event):
    """Lines an attempt printed or logged; its own stream (id `log_id(run, task, attempt)`), so never contended."""

    ACTION = "run.logged"
    run_id: UUID
    task: str
    attempt: int
    lines: tuple[str, ...]


@dataclass
class TaskRun:
    """The state of one task within one run."""

    spec: TaskSpec
    status: str = "waiting"
    attempt: int = 0  # attempts started, lost ones included
    failures: int = 0  # the task's own failures, which `retries` bounds
    lost: int = 0  # attempts lost with their server, which `lost_retries` bounds
    server: str | None = None
    lease_until: datetime | None = None
    not_before: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    exit_status: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)  # one entry per attempt, lost and ignored ones too


_TASK_FIELDS = ("status", "attempt", "failures", "lost", "server", "lease_until", "not_before", "started_at",
                "ended_at", "exit_status", "history")
_RUN_FIELDS = ("id", "version", "job_version", "params", "user", "due_at", "created_at", "fire_time", "started_at",
               "ended_at", "cancelled")


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
        self.tasks: dict[str, TaskRun] = {}

    @property
    def job(self) -> str:
        assert self.definition is not None
        return self.definition.name

    @property
    def complete(self) -> bool:
        return bool(self.tasks) and all(t.status in TERMINAL for t in self.tasks.values())

    def status(self, now: datetime) -> str:
        """`scheduled` (due later), `running` (due, not complete), `succeeded`, `failed` or `cancelled`."""
        if self.cancelled:
            return "cancelled"
        if self.complete:
            failed = any(t.status == "failed" and not t.spec.ignore_failure for t in self.tasks.values())
            return "failed" if failed else "succeeded"
        assert self.due_at is not None
        return "scheduled" if self.due_at > now and self.started_at is None else "running"

    def to_dict(self) -> dict[str, Any]:
        """The state as plain data, but for the definition (see `job_version`): read models keep it, so they fold
        with this very class."""
        data = {name: getattr(self, name) for name in _RUN_FIELDS}
        data["job"] = self.job
        data["tasks"] = {name: {f: getattr(t, f) for f in _TASK_FIELDS} for name, t in self.tasks.items()}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], definition: JobDefinition) -> "Run":
        run = cls()
        for name in _RUN_FIELDS:
            setattr(run, name, data[name])
        run.definition = definition
        run.tasks = {spec.name: TaskRun(spec, **data["tasks"][spec.name]) for spec in run.definition.tasks}
        return run

    # ---- commands: decide, return the event, change nothing ----

    @staticmethod
    def create(run_id: UUID, definition: JobDefinition, job_version: int, params: Mapping[str, Any], user: str,
               due_at: datetime, now: datetime, fire_time: datetime | None = None) -> RunCreated:
        return RunCreated(originator_id=run_id, originator_version=1, timestamp=now,
                          definition=definition.to_dict(), job_version=job_version, params=dict(params), user=user,
                          due_at=due_at, fire_time=fire_time)

    def claimable(self, now: datetime) -> list[str]:
        """Tasks a server may claim now: ready, the run due, any retry delay over."""
        if self.cancelled or self.due_at is None or self.due_at > now:
            return []
        return [t.spec.name for t in self.tasks.values()
                if t.status == "ready" and (t.not_before is None or t.not_before <= now)]

    def claim(self, task: str, server: str, now: datetime, lease_timeout_s: float, early_s: float = 0.0
              ) -> TaskClaimed:
        """Lease the task to `server`; up to `early_s` before it is due, so that it can start on the dot."""
        state = self.tasks[task]
        assert task in self.claimable(now + timedelta(seconds=early_s)), f"{task} is not claimable"
        assert self.due_at is not None
        starts_at = max(now, self.due_at, state.not_before or now)
        return TaskClaimed(originator_id=self.id, originator_version=self.version + 1, timestamp=now,
                           task=task, attempt=state.attempt + 1, server=server, starts_at=starts_at,
                           lease_until=starts_at + timedelta(seconds=lease_timeout_s))

    def finish(self, task: str, attempt: int, now: datetime, *, exit_status: str | None,
               result: Any = None) -> Event:
        """Record the outcome of an attempt (`exit_status` None means success), fenced by attempt number."""
        state = self.tasks[task]
        common: dict[str, Any] = {"originator_id": self.id, "originator_version": self.version + 1, "timestamp": now,
                  "task": task, "attempt": attempt}
        if state.status != "running" or state.attempt != attempt:
            return ResultIgnored(**common, outcome="succeeded" if exit_status is None else exit_status)
        if exit_status is None:
            return TaskSucceeded(**common, result=result)
        return TaskFailed(**common, exit_status=exit_status)

    def expire(self, task: str, now: datetime, lease_until: datetime) -> AttemptLost | None:
        """Reap the running attempt of `task` if its lease (as extended by heartbeats) ran out before `now`."""
        state = self.tasks[task]
        if state.status != "running" or lease_until >= now:
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

    def apply(self, event: RunEvent) -> None:
        assert event.originator_version == self.version + 1, (
            f"run {event.originator_id}: event v{event.originator_version} after v{self.version}")
        self.id, self.version = event.originator_id, event.originator_version
        now = event.timestamp
        if isinstance(event, RunCreated):
            self.definition = JobDefinition.from_dict(event.definition)
            self.job_version = event.job_version
            self.params, self.user, self.due_at = event.params, event.user, event.due_at
            self.created_at, self.fire_time = now, event.fire_time
            self.tasks = {spec.name: TaskRun(spec) for spec in self.definition.tasks}
        elif isinstance(event, TaskClaimed):
            state = self.tasks[event.task]
            state.status, state.attempt, state.server = "running", event.attempt, event.server
            started = event.starts_at
            state.lease_until, state.started_at, state.ended_at = event.lease_until, started, None
            state.history.append({"attempt": event.attempt, "server": event.server, "started_at": started,
                                  "ended_at": None, "outcome": None})
            self.started_at = self.started_at or started
        elif isinstance(event, TaskSucceeded):
            self._close_attempt(event.task, event.attempt, "succeeded", now)
            self._end(self.tasks[event.task], "succeeded", None, now)
        elif isinstance(event, TaskFailed):
            self._close_attempt(event.task, event.attempt, event.exit_status, now)
            state = self.tasks[event.task]
            state.failures += 1
            if state.failures <= state.spec.retries:
                self._retry(state, event.exit_status, now + timedelta(seconds=state.spec.retry_wait_s(state.failures)))
            else:
                self._end(state, "failed", event.exit_status, now)
        elif isinstance(event, AttemptLost):
            state = self.tasks[event.task]
            state.lost += 1
            exit_status = f"lost: server {event.server} stopped responding"
            self._close_attempt(event.task, event.attempt, exit_status, now)
            if state.lost <= state.spec.lost_retries:
                self._retry(state, exit_status, now)
            else:
                self._end(state, "failed", exit_status, now)
        elif isinstance(event, ResultIgnored):
            for entry in self.tasks[event.task].history:
                if entry["attempt"] == event.attempt:
                    entry["late_result"] = event.outcome
        elif isinstance(event, RunCancelled):
            self.cancelled = True
            for state in self.tasks.values():
                if state.status == "running":
                    self._close_attempt(state.spec.name, state.attempt, "cancelled", now)
                if state.status not in TERMINAL:
                    self._end(state, "cancelled", f"cancelled by {event.user}", now)
        self._settle()
        if self.complete and self.ended_at is None:
            self.ended_at = now

    def _close_attempt(self, task: str, attempt: int, outcome: str, now: datetime) -> None:
        entry = self.tasks[task].history[-1]
        assert entry["attempt"] == attempt
        entry["ended_at"], entry["outcome"] = now, outcome

    def _retry(self, state: TaskRun, exit_status: str, not_before: datetime) -> None:
        state.status, state.exit_status, state.not_before = "ready", exit_status, not_before
        state.server = state.lease_until = None

    def _end(self, state: TaskRun, status: str, exit_status: str | None, now: datetime) -> None:
        state.status, state.exit_status, state.ended_at = status, exit_status, now
        state.lease_until = None

    def _settle(self) -> None:
        """Move waiting tasks whose conditions are decided to ready or skipped, until nothing changes."""
        changed = True
        while changed:
            changed = False
            for state in self.tasks.values():
                if state.status == "waiting":
                    verdict = self._conditions(state.spec)
                    if verdict is not None:
                        state.status = "ready" if verdict else "skipped"
                        if not verdict:
                            state.exit_status = "skipped: conditions can no longer be met"
                        changed = True

    def _conditions(self, spec: TaskSpec) -> bool | None:
        """True when the task may run, False when it never can, None while undecided."""
        if not spec.after:
            return True
        verdicts = [_condition(self.tasks[parent].status, condition) for parent, condition in spec.after]
        if spec.when == "all":
            if False in verdicts:
                return False
            return True if all(verdicts) else None
        if True in verdicts:
            return True
        return False if all(v is False for v in verdicts) else None


def _condition(parent_status: str, condition: str) -> bool | None:
    """Whether a parent in `parent_status` meets `condition`; None while the parent has not ended."""
    if parent_status not in TERMINAL:
        return None
    if condition == "ended":
        return parent_status in ("succeeded", "failed")
    return parent_status == condition
