"""Job definitions, a graph of tasks, and the Job aggregate with its events.

A definition is built by the job-file parser (`jobfile`), which checks it: a definition that exists is a valid one.
"""

from collections.abc import Mapping
from dataclasses import field
from datetime import datetime
from typing import Any

from actorbatch.domain.events import Event
from actorbatch.errors import InvalidJob
from actorbatch.frozen import frozen

PRIORITIES = {"low": 0, "normal": 1, "high": 2, "critical": 3}
ALERTS = ("always", "on-error", "never")
CONDITIONS = ("succeeded", "failed", "ended")
WHEN = ("all", "any")


@frozen
class TaskSpec:
    """One task of a job: its body, its dependencies and its failure policy."""

    name: str
    run: str | None = None
    command: tuple[str, ...] | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    retries: int = 0
    retry_delay_s: float = 10.0
    timeout_s: float | None = None
    ignore_failure: bool = False
    lost_retries: int = 3
    after: tuple[tuple[str, str], ...] = ()
    when: str = "all"
    privileges: tuple[str, ...] = ()  # application privileges the acting user must hold when it would start

    def retry_wait_s(self, failures: int) -> float:
        """Delay before the retry that follows the `failures`-th failure: doubles each time, capped at 10x."""
        return float(min(self.retry_delay_s * 2 ** (failures - 1), self.retry_delay_s * 10))


@frozen
class JobDefinition:
    """A named job: what runs (tasks), where (group), how urgently (priority) and when (schedule)."""

    name: str
    tasks: tuple[TaskSpec, ...]
    description: str = ""
    group: str = "default"
    priority: str = "normal"
    alerts: str = "on-error"
    schedule: Mapping[str, Any] | None = None
    privileges: tuple[str, ...] = ()  # the acting user must hold these for every task to start
    run_as_os_user: bool = False  # shell commands run as the OS user named like the acting user (root servers)
    notify: tuple[str, ...] = ()  # webhook URLs told of each completed run the alerts policy announces

    def needs(self, task: TaskSpec) -> tuple[str, ...]:
        """The privileges a task's acting user must hold: the job's, then the task's own."""
        return (*self.privileges, *task.privileges) if task.privileges else self.privileges

    @property
    def priority_rank(self) -> int:
        return PRIORITIES[self.priority]

    def task(self, name: str) -> TaskSpec:
        for spec in self.tasks:
            if spec.name == name:
                return spec
        raise InvalidJob(f"job {self.name!r} has no task {name!r}")

    def to_dict(self) -> dict[str, Any]:
        """A plain, msgpack-able form for events; `from_dict` reverses it exactly."""
        return {
            "name": self.name, "description": self.description, "group": self.group,
            "priority": self.priority, "alerts": self.alerts, "schedule": self.schedule,
            "privileges": list(self.privileges), "run_as_os_user": self.run_as_os_user, "notify": list(self.notify),
            "tasks": [{
                "name": t.name, "run": t.run, "command": list(t.command) if t.command else None,
                "params": dict(t.params), "retries": t.retries, "retry_delay_s": t.retry_delay_s,
                "timeout_s": t.timeout_s, "ignore_failure": t.ignore_failure, "lost_retries": t.lost_retries,
                "after": [list(a) for a in t.after], "when": t.when, "privileges": list(t.privileges),
            } for t in self.tasks],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "JobDefinition":
        tasks = tuple(TaskSpec(
            name=t["name"], run=t["run"], command=tuple(t["command"]) if t["command"] else None,
            params=t["params"], retries=t["retries"], retry_delay_s=t["retry_delay_s"],
            timeout_s=t["timeout_s"], ignore_failure=t["ignore_failure"], lost_retries=t["lost_retries"],
            after=tuple((p, c) for p, c in t["after"]), when=t["when"], privileges=tuple(t.get("privileges", ())),
        ) for t in data["tasks"])  # definitions stored before privileges existed have none
        return cls(name=data["name"], tasks=tasks, description=data["description"], group=data["group"],
                   priority=data["priority"], alerts=data["alerts"], schedule=data["schedule"],
                   privileges=tuple(data.get("privileges", ())), run_as_os_user=data.get("run_as_os_user", False),
                   notify=tuple(data.get("notify", ())))  # definitions recorded before webhooks had none

# Events of the Job aggregate: its id is job_id(name), so two concurrent `job add` of one name conflict.

@frozen
class JobEvent(Event):
    """An event of the Job aggregate."""


@frozen
class JobAdded(JobEvent):
    ACTION = "job.added"
    definition: Mapping[str, Any]
    user: str


@frozen
class JobReplaced(JobEvent):
    ACTION = "job.replaced"
    definition: Mapping[str, Any]
    user: str


@frozen
class JobRemoved(JobEvent):
    ACTION = "job.removed"
    user: str


@frozen
class JobScheduled(JobEvent):
    """Schedule (re)started: fire times from `timestamp` on exist; earlier ones while unscheduled never did."""

    ACTION = "job.scheduled"
    user: str


@frozen
class JobUnscheduled(JobEvent):
    ACTION = "job.unscheduled"
    user: str


class JobState:
    """The Job aggregate: the current definition and whether it is scheduled, folded from its events."""

    def __init__(self) -> None:
        self.id: Any = None
        self.version = 0
        self.definition: JobDefinition | None = None
        self.removed = False
        self.owner = ""  # runs execute as the user who last added the job
        self.scheduled_at: datetime | None = None
        self.last_fire: datetime | None = None  # the latest fire time a run was created or skipped for
        self.skipped = 0  # fire times skipped by the overlap policy
        self.last_skip: str | None = None

    def apply(self, event: JobEvent) -> None:
        self.id, self.version = event.originator_id, event.originator_version
        if isinstance(event, JobAdded | JobReplaced):
            self.definition = JobDefinition.from_dict(event.definition)
            self.removed, self.owner = False, event.user
            self.scheduled_at = event.timestamp if self.definition.schedule else None
        elif isinstance(event, JobRemoved):
            self.removed, self.scheduled_at = True, None
        elif isinstance(event, JobScheduled):
            self.scheduled_at = event.timestamp
        elif isinstance(event, JobUnscheduled):
            self.scheduled_at = None

    def fired(self, fire_time: datetime, skipped: str | None = None) -> None:
        """A run was created (or, with a reason, skipped) for `fire_time`; runs and fires are their own aggregates."""
        if self.last_fire is None or fire_time > self.last_fire:
            self.last_fire = fire_time
        if skipped is not None:
            self.skipped, self.last_skip = self.skipped + 1, skipped

    @property
    def exists(self) -> bool:
        return self.definition is not None and not self.removed

    def to_dict(self) -> dict[str, Any]:
        """Plain data for read models, which fold with this very class."""
        assert self.definition is not None
        return {"id": self.id, "version": self.version, "removed": self.removed, "owner": self.owner,
                "definition": self.definition.to_dict(), "scheduled_at": self.scheduled_at,
                "last_fire": self.last_fire, "skipped": self.skipped, "last_skip": self.last_skip}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "JobState":
        job = cls()
        job.id, job.version, job.removed, job.owner = data["id"], data["version"], data["removed"], data["owner"]
        job.definition = JobDefinition.from_dict(data["definition"])
        job.scheduled_at, job.last_fire = data["scheduled_at"], data["last_fire"]
        job.skipped, job.last_skip = data["skipped"], data["last_skip"]
        return job
