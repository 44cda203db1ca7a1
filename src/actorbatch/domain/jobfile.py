"""The job file: its TOML tables parsed and checked into job definitions.

Validation happens here, once, before anything is written: a definition that exists is a valid one.
"""

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from actorbatch.domain.durations import parse_duration_s
from actorbatch.domain.jobs import ALERTS, CONDITIONS, PRIORITIES, WHEN, JobDefinition, TaskSpec
from actorbatch.domain.limits import (
    MAX_COMMAND_ARGS,
    MAX_JOB_BYTES,
    MAX_RETRIES,
    MAX_TASKS,
    MAX_TEXT_CHARS,
    MAX_WEBHOOKS,
    check_count,
    check_name,
    check_params,
    check_privilege,
    check_text,
    check_url,
    show,
    stored_bytes,
)
from actorbatch.domain.recurrence import parse_schedule
from actorbatch.errors import InvalidJob

_CALLABLE = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")
_JOB_KEYS = {"name", "description", "group", "priority", "alerts", "notify", "schedule", "tasks", "privileges",
             "run_as_os_user"}
MAX_PRIVILEGES = 100  # named by one job or task
_TASK_KEYS = {"name", "run", "command", "params", "retries", "retry_delay", "timeout", "ignore_failure",
              "lost_retries", "after", "when", "privileges"}


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
    check_unique(jobs, "in this file")
    return jobs


def check_unique(jobs: Sequence[JobDefinition], where: str) -> None:
    """One name, one job: two definitions of a name in one append would race for the same version."""
    twice = _first_repeat(job.name for job in jobs)
    if twice is not None:
        raise InvalidJob(f"job {twice!r} is defined twice {where}")


def _first_repeat(names: Iterable[str]) -> str | None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            return name
        seen.add(name)
    return None


def validate_definition(job: object) -> JobDefinition:
    """A JobDefinition built in Python, checked by the very parser job files go through: there is one set of
    checks. Returns the definition as the parser builds it (the form that is stored)."""
    if not isinstance(job, JobDefinition):
        raise InvalidJob(f"expected a JobDefinition, got {show(job)}")
    return parse_job(_table(job))


def _table(job: JobDefinition) -> dict[str, Any]:
    """The job-file table of a definition: what `parse_job` reads back into an equal definition."""
    table: dict[str, Any] = {"name": job.name, "description": job.description, "group": job.group,
                             "priority": job.priority, "alerts": job.alerts, "privileges": job.privileges,
                             "run_as_os_user": job.run_as_os_user,
                             "notify": list(job.notify) if isinstance(job.notify, tuple) else job.notify}
    if job.schedule is not None:
        table["schedule"] = job.schedule
    tasks = job.tasks
    if isinstance(tasks, tuple | list):
        table["tasks"] = [_task_table(t, job.name) for t in tasks]
    return table


def _task_table(task: object, job: object) -> object:
    if not isinstance(task, TaskSpec):
        return task  # the parser says what is wrong with it
    table: dict[str, Any] = {
        "name": task.name, "params": task.params, "retries": task.retries, "retry_delay": task.retry_delay_s,
        "ignore_failure": task.ignore_failure, "lost_retries": task.lost_retries, "when": task.when,
        "privileges": task.privileges,
        "after": _after_table(task.after, f"job {show(job)}, task {show(task.name)}"),
    }
    for key, value in (("run", task.run), ("timeout", task.timeout_s)):
        if value is not None:
            table[key] = value
    if task.command is not None:
        table["command"] = list(task.command) if isinstance(task.command, tuple) else task.command
    return table


def _after_table(after: object, where: str) -> object:
    """(parent, condition) pairs as the job file's `after` table; a parent named twice is refused."""
    if not isinstance(after, tuple | list):
        return after
    table: dict[str, object] = {}
    for pair in after:
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise InvalidJob(f"{where}: after must hold (parent, condition) pairs, got {show(pair)}")
        parent, condition = pair
        if not isinstance(parent, str):
            raise InvalidJob(f"{where}: after: a parent is a task name, got {show(parent)}")
        if parent in table:
            raise InvalidJob(f"{where}: after names {parent!r} twice")
        table[parent] = condition
    return table


def parse_job(table: Mapping[str, Any]) -> JobDefinition:
    """One job table -> JobDefinition, or InvalidJob with a one-line message saying what is wrong and where."""
    if not isinstance(table, Mapping):
        raise InvalidJob(f"each [[job]] entry must be a table, got {show(table)}")
    name = check_name(table.get("name"), "job name")
    where = f"job {name!r}"
    _no_unknown_keys(table, _JOB_KEYS, where)
    tasks_table = table.get("tasks")
    if not isinstance(tasks_table, list) or not tasks_table:
        raise InvalidJob(f"{where}: needs at least one [[tasks]] table")
    if len(tasks_table) > MAX_TASKS:
        raise InvalidJob(f"{where}: at most {MAX_TASKS:,} tasks, got {len(tasks_table):,}")
    tasks = tuple(_parse_task(t, where) for t in tasks_table)
    _check_graph(tasks, where)
    schedule = None
    if "schedule" in table:
        if not isinstance(table["schedule"], Mapping):
            raise InvalidJob(f"{where}: schedule must be a table")
        try:
            schedule = parse_schedule(table["schedule"]).to_dict()
        except InvalidJob as error:
            raise InvalidJob(f"{where}: {error}") from None
    job = JobDefinition(
        name=name,
        tasks=tasks,
        description=check_text(table.get("description", ""), f"{where}: description"),
        group=check_name(table.get("group", "default"), f"{where}: group"),
        priority=_choice(table.get("priority", "normal"), tuple(PRIORITIES), f"{where}: priority"),
        alerts=_choice(table.get("alerts", "on-error"), ALERTS, f"{where}: alerts"),
        schedule=schedule,
        privileges=_privileges(table.get("privileges", []), f"{where}: privileges"),
        run_as_os_user=_bool(table.get("run_as_os_user", False), f"{where}: run_as_os_user"),
        notify=_webhooks(table.get("notify", []), where),
    )
    if sum(map(_stored_bytes, tasks)) > MAX_JOB_BYTES:  # each run carries a copy of its job's definition
        raise InvalidJob(f"{where}: too big: more than {MAX_JOB_BYTES:,} bytes as stored")
    return job


def _webhooks(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > MAX_WEBHOOKS:
        raise InvalidJob(f"{where}: notify must be a list of at most {MAX_WEBHOOKS} webhook URLs, got {show(value)}")
    urls = tuple(check_url(url, f"{where}: notify[{index}]") for index, url in enumerate(value))
    twice = _first_repeat(urls)
    if twice is not None:
        raise InvalidJob(f"{where}: notify names {twice!r} twice")
    return urls


def _stored_bytes(task: TaskSpec) -> int:
    """About what a task takes in a stored definition: its texts, its params and the keys around them."""
    texts = len(task.name) + len(task.run or "") + sum(map(len, task.command or ())) + sum(map(len, task.privileges))
    return 200 + texts + 30 * len(task.after) + (stored_bytes(task.params) if task.params else 0)


def _parse_task(table: object, job: str) -> TaskSpec:
    if not isinstance(table, Mapping):
        raise InvalidJob(f"{job}: each [[tasks]] entry must be a table")
    name = check_name(table.get("name"), f"{job}: task name")
    where = f"{job}, task {name!r}"
    _no_unknown_keys(table, _TASK_KEYS, where)
    run, command = table.get("run"), table.get("command")
    if (run is None) == (command is None):
        raise InvalidJob(f"{where}: needs exactly one body, `run = \"module:function\"` or `command = [...]`")
    if run is not None and (not isinstance(run, str) or len(run) > MAX_TEXT_CHARS or not _CALLABLE.fullmatch(run)):
        raise InvalidJob(f"{where}: run must look like 'package.module:function', got {show(run)}")
    if command is not None and (not isinstance(command, list) or not 0 < len(command) <= MAX_COMMAND_ARGS
                                or not all(isinstance(a, str) for a in command)):
        raise InvalidJob(f"{where}: command must be a non-empty list of strings (at most {MAX_COMMAND_ARGS})")
    for index, argument in enumerate(command or ()):
        check_text(argument, f"{where}: command[{index}]")
    after = table.get("after", {})
    if not isinstance(after, Mapping):
        raise InvalidJob(f"{where}: after must be a table like {{ parent = \"succeeded\" }}")
    for parent, condition in after.items():
        if condition not in CONDITIONS:
            raise InvalidJob(f"{where}: condition on {parent!r} must be one of {', '.join(CONDITIONS)}, "
                             f"got {show(condition)}")
    timeout = table.get("timeout")
    return TaskSpec(
        name=name,
        run=run,
        command=tuple(command) if command is not None else None,
        params=check_params(table.get("params", {}), f"{where}: params"),
        retries=check_count(table.get("retries", 0), f"{where}: retries", 0, MAX_RETRIES),
        retry_delay_s=parse_duration_s(table.get("retry_delay", "10s"), f"{where}: retry_delay", zero=True),
        timeout_s=None if timeout is None else parse_duration_s(timeout, f"{where}: timeout"),
        ignore_failure=_bool(table.get("ignore_failure", False), f"{where}: ignore_failure"),
        lost_retries=check_count(table.get("lost_retries", 3), f"{where}: lost_retries", 0, MAX_RETRIES),
        after=tuple(after.items()),
        when=_choice(table.get("when", "all"), WHEN, f"{where}: when"),
        privileges=_privileges(table.get("privileges", []), f"{where}: privileges"),
    )


def _privileges(value: object, where: str) -> tuple[str, ...]:
    """`privileges = ["invoice.post"]`: privilege names, each once (a tuple from Python is taken too)."""
    if not isinstance(value, list | tuple) or len(value) > MAX_PRIVILEGES:
        raise InvalidJob(f"{where}: expected a list of at most {MAX_PRIVILEGES} privilege names, got {show(value)}")
    return tuple(dict.fromkeys(check_privilege(p, where) for p in value))


def _check_graph(tasks: Sequence[TaskSpec], job: str) -> None:
    """Unique names, known parents, no cycle; linear in tasks and dependencies (a job may have 100,000 tasks)."""
    twice = _first_repeat(t.name for t in tasks)
    if twice is not None:
        raise InvalidJob(f"{job}: task {twice!r} is defined twice")
    names = {t.name for t in tasks}
    for t in tasks:
        for parent, _ in t.after:
            if parent not in names:
                raise InvalidJob(f"{job}, task {t.name!r}: depends on unknown task {show(parent)}")
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
    stuck = [t.name for t in tasks if waiting[t.name] > 0]
    if stuck:
        path = [stuck[0]]  # walk parents inside the stuck set until a task repeats: that is a cycle
        while path.count(path[-1]) < 2:
            path.append(next(p for p in parents[path[-1]] if waiting[p] > 0))
        cycle = path[path.index(path[-1]):]
        raise InvalidJob(f"{job}: dependency cycle {' -> '.join(cycle)} (each depends on the next)")


def _no_unknown_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed, key=str)
    if unknown:
        raise InvalidJob(f"{where}: unknown key {show(unknown[0])}")


def _choice(value: object, choices: Sequence[str], field_name: str) -> str:
    if not isinstance(value, str) or value not in choices:
        raise InvalidJob(f"{field_name}: expected one of {', '.join(choices)}, got {show(value)}")
    return value


def _bool(value: object, field_name: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidJob(f"{field_name}: expected true or false, got {show(value)}")
    return value

