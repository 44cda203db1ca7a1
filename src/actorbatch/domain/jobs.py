"""Job definitions: a validated graph of tasks, parsed from the job file's TOML tables.

Validation happens here, once, before anything is written: a definition that exists is a valid one.
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from actorbatch.domain.durations import parse_duration_s
from actorbatch.domain.events import Event
from actorbatch.errors import InvalidJob

PRIORITIES = {"low": 0, "normal": 1, "high": 2, "critical": 3}
ALERTS = ("always", "on-error", "never")
CONDITIONS = ("succeeded", "failed", "ended")
WHEN = ("all", "any")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_CALLABLE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_JOB_KEYS = {"name", "description", "group", "priority", "alerts", "schedule", "tasks"}
_TASK_KEYS = {"name", "run", "command", "params", "retries", "retry_delay", "timeout", "ignore_failure",
              "lost_retries", "after", "when"}


@dataclass(frozen=True)
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

    def retry_wait_s(self, failures: int) -> float:
        """Delay before the retry that follows the `failures`-th failure: doubles each time, capped at 10x."""
        return float(min(self.retry_delay_s * 2 ** (failures - 1), self.retry_delay_s * 10))


@dataclass(frozen=True)
class JobDefinition:
    """A named job: what runs (tasks), where (group), how urgently (priority) and when (schedule)."""

    name: str
    tasks: tuple[TaskSpec, ...]
    description: str = ""
    group: str = "default"
    priority: str = "normal"
    alerts: str = "on-error"
    schedule: Mapping[str, Any] | None = None

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
            "tasks": [{
                "name": t.name, "run": t.run, "command": list(t.command) if t.command else None,
                "params": dict(t.params), "retries": t.retries, "retry_delay_s": t.retry_delay_s,
                "timeout_s": t.timeout_s, "ignore_failure": t.ignore_failure, "lost_retries": t.lost_retries,
                "after": [list(a) for a in t.after], "when": t.when,
            } for t in self.tasks],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "JobDefinition":
        tasks = tuple(TaskSpec(
            name=t["name"], run=t["run"], command=tuple(t["command"]) if t["command"] else None,
            params=t["params"], retries=t["retries"], retry_delay_s=t["retry_delay_s"],
            timeout_s=t["timeout_s"], ignore_failure=t["ignore_failure"], lost_retries=t["lost_retries"],
            after=tuple((p, c) for p, c in t["after"]), when=t["when"],
        ) for t in data["tasks"])
        return cls(name=data["name"], tasks=tasks, description=data["description"], group=data["group"],
                   priority=data["priority"], alerts=data["alerts"], schedule=data["schedule"])


def parse_jobs(document: Mapping[str, Any]) -> list[JobDefinition]:
    """All jobs of one job file: a single top-level job, or several `[[job]]` tables."""
    if "job" in document:
        if set(document) != {"job"}:
            raise InvalidJob("a file with [[job]] tables may hold nothing else at the top level")
        tables = document["job"]
        if not isinstance(tables, list) or not tables:
            raise InvalidJob("job: expected one or more [[job]] tables")
        jobs = [parse_job(t) for t in tables]
    else:
        jobs = [parse_job(document)]
    names = [j.name for j in jobs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidJob(f"job {duplicates[0]!r} is defined twice in this file")
    return jobs


def parse_job(table: Mapping[str, Any]) -> JobDefinition:
    """One job table -> JobDefinition, or InvalidJob with a one-line message saying what is wrong and where."""
    if not isinstance(table, Mapping):
        raise InvalidJob(f"each [[job]] entry must be a table, got {table!r}")
    name = _name(table.get("name"), "job name")
    where = f"job {name!r}"
    _no_unknown_keys(table, _JOB_KEYS, where)
    tasks_table = table.get("tasks")
    if not isinstance(tasks_table, list) or not tasks_table:
        raise InvalidJob(f"{where}: needs at least one [[tasks]] table")
    tasks = tuple(_parse_task(t, where) for t in tasks_table)
    _check_graph(tasks, where)
    schedule = None
    if "schedule" in table:
        from actorbatch.domain.recurrence import parse_schedule

        if not isinstance(table["schedule"], Mapping):
            raise InvalidJob(f"{where}: schedule must be a table")
        try:
            schedule = parse_schedule(table["schedule"]).to_dict()
        except InvalidJob as error:
            raise InvalidJob(f"{where}: {error}") from None
    return JobDefinition(
        name=name,
        tasks=tasks,
        description=_str(table.get("description", ""), f"{where}: description"),
        group=_name(table.get("group", "default"), f"{where}: group"),
        priority=_choice(table.get("priority", "normal"), tuple(PRIORITIES), f"{where}: priority"),
        alerts=_choice(table.get("alerts", "on-error"), ALERTS, f"{where}: alerts"),
        schedule=schedule,
    )


def _parse_task(table: object, job: str) -> TaskSpec:
    if not isinstance(table, Mapping):
        raise InvalidJob(f"{job}: each [[tasks]] entry must be a table")
    name = _name(table.get("name"), f"{job}: task name")
    where = f"{job}, task {name!r}"
    _no_unknown_keys(table, _TASK_KEYS, where)
    run, command = table.get("run"), table.get("command")
    if (run is None) == (command is None):
        raise InvalidJob(f"{where}: needs exactly one body, `run = \"module:function\"` or `command = [...]`")
    if run is not None and (not isinstance(run, str) or not _CALLABLE.match(run)):
        raise InvalidJob(f"{where}: run must look like 'package.module:function', got {run!r}")
    if command is not None and (not isinstance(command, list) or not command
                                or not all(isinstance(a, str) for a in command)):
        raise InvalidJob(f"{where}: command must be a non-empty list of strings")
    params = table.get("params", {})
    if not isinstance(params, Mapping):
        raise InvalidJob(f"{where}: params must be a table")
    _check_value(params, f"{where}: params")
    after = table.get("after", {})
    if not isinstance(after, Mapping):
        raise InvalidJob(f"{where}: after must be a table like {{ parent = \"succeeded\" }}")
    for parent, condition in after.items():
        if condition not in CONDITIONS:
            raise InvalidJob(f"{where}: condition on {parent!r} must be one of {', '.join(CONDITIONS)}, "
                             f"got {condition!r}")
    timeout = table.get("timeout")
    return TaskSpec(
        name=name,
        run=run,
        command=tuple(command) if command is not None else None,
        params=dict(params),
        retries=_count(table.get("retries", 0), f"{where}: retries"),
        retry_delay_s=parse_duration_s(table.get("retry_delay", "10s"), f"{where}: retry_delay"),
        timeout_s=None if timeout is None else parse_duration_s(timeout, f"{where}: timeout"),
        ignore_failure=_bool(table.get("ignore_failure", False), f"{where}: ignore_failure"),
        lost_retries=_count(table.get("lost_retries", 3), f"{where}: lost_retries"),
        after=tuple(after.items()),
        when=_choice(table.get("when", "all"), WHEN, f"{where}: when"),
    )


def _check_graph(tasks: Sequence[TaskSpec], job: str) -> None:
    names = [t.name for t in tasks]
    for t in tasks:
        if names.count(t.name) > 1:
            raise InvalidJob(f"{job}: task {t.name!r} is defined twice")
    for t in tasks:
        for parent, _ in t.after:
            if parent not in names:
                raise InvalidJob(f"{job}, task {t.name!r}: depends on unknown task {parent!r}")
            if parent == t.name:
                raise InvalidJob(f"{job}, task {t.name!r}: depends on itself")
    # Kahn's algorithm, iterative so a long chain cannot exhaust the stack: what never becomes free is in a cycle.
    parents = {t.name: [p for p, _ in t.after] for t in tasks}
    children: dict[str, list[str]] = {n: [] for n in names}
    for name, ps in parents.items():
        for parent in ps:
            children[parent].append(name)
    waiting = {n: len(ps) for n, ps in parents.items()}
    free = [n for n, count in waiting.items() if count == 0]
    while free:
        for child in children[free.pop()]:
            waiting[child] -= 1
            if waiting[child] == 0:
                free.append(child)
    stuck = [n for n in names if waiting[n] > 0]
    if stuck:
        path = [stuck[0]]  # walk parents inside the stuck set until a task repeats: that is a cycle
        while path.count(path[-1]) < 2:
            path.append(next(p for p in parents[path[-1]] if waiting[p] > 0))
        cycle = path[path.index(path[-1]):]
        raise InvalidJob(f"{job}: dependency cycle {' -> '.join(cycle)} (each depends on the next)")


def _check_value(value: object, where: str) -> None:
    """Parameters are stored in events: strings, numbers, booleans, date-times, lists and tables only."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            _check_value(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_value(item, f"{where}[{index}]")
    elif not isinstance(value, str | int | float | bool | datetime):
        raise InvalidJob(f"{where}: a {type(value).__name__} cannot be a parameter; write it as a string")


def _no_unknown_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise InvalidJob(f"{where}: unknown key {unknown[0]!r}")


def _name(value: object, field_name: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise InvalidJob(f"{field_name}: expected a name of letters, digits, '.', '_' or '-', got {value!r}")
    return value


def _str(value: object, field_name: str) -> str:
    if not isinstance(value, str):
        raise InvalidJob(f"{field_name}: expected a string, got {value!r}")
    return value


def _choice(value: object, choices: Sequence[str], field_name: str) -> str:
    if value not in choices:
        raise InvalidJob(f"{field_name}: expected one of {', '.join(choices)}, got {value!r}")
    return str(value)


def _count(value: object, field_name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1000:
        raise InvalidJob(f"{field_name}: expected a whole number from 0 to 1000, got {value!r}")
    return value


def _bool(value: object, field_name: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidJob(f"{field_name}: expected true or false, got {value!r}")
    return value


# Events of the Job aggregate: its id is job_id(name), so two concurrent `job add` of one name conflict.

@dataclass(frozen=True)
class JobEvent(Event):
    """An event of the Job aggregate."""


@dataclass(frozen=True)
class JobAdded(JobEvent):
    ACTION = "job.added"
    definition: Mapping[str, Any]
    user: str


@dataclass(frozen=True)
class JobReplaced(JobEvent):
    ACTION = "job.replaced"
    definition: Mapping[str, Any]
    user: str


@dataclass(frozen=True)
class JobRemoved(JobEvent):
    ACTION = "job.removed"
    user: str


@dataclass(frozen=True)
class JobScheduled(JobEvent):
    """Schedule (re)started: fire times from `timestamp` on exist; earlier ones while unscheduled never did."""

    ACTION = "job.scheduled"
    user: str


@dataclass(frozen=True)
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
