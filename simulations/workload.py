"""The job mix of a simulation: job definitions built through the real parser, and what the users do over time.

Graph shapes: `single` (one task), `chain` (each task after the previous one), `fan` (a root, parallel branches, a
join) and `ax` (the AX 2009 walkthrough's conditional graph, whose branches depend on a task that often fails).
Schedules are real `[schedule]` tables (every, hourly, daily, weekly, monthly, cron), so the real recurrence rules
decide the fire times.
"""

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

from actorbatch.domain.cron import WEEKDAYS
from actorbatch.domain.durations import parse_duration_s
from actorbatch.domain.events import Event
from actorbatch.domain.jobfile import parse_job
from actorbatch.domain.jobs import JobDefinition
from actorbatch.domain.limits import LATEST, MAX_NAME_CHARS, MAX_PARAMS_DEPTH
from actorbatch.domain.recurrence import MISFIRE_POLICIES, OVERLAP_POLICIES
from simulations.config import WorkloadSpec

BODY = "simulations.bodies:simulated"
CRON_TEMPLATES = ("{m} */2 * * *", "*/15 8-18 * * mon-fri", "{m} {h} * * *", "*/5 * * * *", "{m} {h} 1,15 * *")
# For estimating the load a mix offers: tasks per run of each shape, and fires per hour of each rule.
TASKS_PER_RUN = {"single": 1.0, "chain": 4.0, "fan": 7.0, "ax": 4.5}
FIRES_PER_H = {"hourly": 1.0, "cron": 2.9, "daily": 1 / 24, "weekly": 3 / 168, "monthly-last": 1 / 720}


@dataclass(frozen=True)
class Submission:
    """A user runs an unscheduled job at `at_s`, now or `due_in_s` later."""

    at_s: float
    job: str
    due_in_s: float


@dataclass(frozen=True)
class Workload:
    """What the users do: add `jobs` at the start, then submit, cancel and reschedule; a replay of a recorded
    log gives the recorded users' events instead, appended as they were, when they were."""

    jobs: tuple[JobDefinition, ...]
    submissions: tuple[Submission, ...]
    cancels: tuple[float, ...]  # moments a user cancels an active run
    reschedules: tuple[tuple[float, float], ...]  # (unschedule at, schedule again at)
    recorded: tuple[Event, ...] = ()
    recorded_cancels: tuple[tuple[datetime, UUID], ...] = ()  # (when, which run)
    hostile: tuple[float, ...] = ()  # moments a hostile user tries something (see HOSTILE_JOBS, REFUSED_RUNS)
    backfills: tuple[float, ...] = ()  # moments a user backfills a scheduled job's last hour


def generate(spec: WorkloadSpec, rng: random.Random, horizon_s: float) -> Workload:
    """Jobs, and the users' actions over [0, horizon_s)."""
    jobs = tuple(_job(i, spec, rng) for i in range(spec.jobs))
    on_demand = [j.name for j in jobs if j.schedule is None]
    submissions: list[Submission] = []
    if on_demand:
        for at_s in _poisson(rng, spec.submissions_per_h, horizon_s):
            due_in_s = rng.uniform(*spec.later_s) if rng.random() < spec.later_share else 0.0
            submissions.append(Submission(at_s, rng.choice(on_demand), due_in_s))
    reschedules = [(at_s, at_s + rng.uniform(30, 1800)) for at_s in _poisson(rng, spec.reschedules_per_h, horizon_s)]
    cancels = tuple(_poisson(rng, spec.cancels_per_h, horizon_s))
    # Drawn last, and not at all at rate 0: a seed without a hostile user (or backfills) gives the workload it
    # always gave.
    hostile = tuple(_poisson(rng, spec.hostile_per_h, horizon_s))
    backfills = tuple(_poisson(rng, spec.backfills_per_h, horizon_s))
    if spec.webhooks or set(spec.alerts) != {"on-error"}:  # after those, and only then, for the same reason
        jobs = tuple(_alerting(job, spec, rng) for job in jobs)
    return Workload(jobs, tuple(submissions), cancels, tuple(reschedules), hostile=hostile, backfills=backfills)


def _alerting(job: JobDefinition, spec: WorkloadSpec, rng: random.Random) -> JobDefinition:
    """The job with an alerts policy drawn from the mix, and perhaps a webhook."""
    webhook = rng.random() < spec.webhooks
    return replace(job, alerts=_pick(rng, spec.alerts),
                   notify=(f"https://hooks.example.com/{job.name}",) if webhook else ())


def offered_load(spec: WorkloadSpec) -> float:
    """Thread-seconds of work the mix offers per hour, roughly: to size a workload to its cluster."""
    low, high = spec.task_s
    task_s = (high - low) / math.log(high / low) if high > low else low  # the mean of a log-uniform draw
    shapes = sum(spec.shapes.values())
    tasks = sum(w * TASKS_PER_RUN[k] for k, w in spec.shapes.items()) / shapes if shapes else 0.0
    every_per_h = sum(3600 / parse_duration_s(e, "every") for e in spec.every) / len(spec.every)
    rules = sum(spec.rules.values())
    fires = sum(w * (every_per_h if k == "every" else FIRES_PER_H[k]) for k, w in spec.rules.items()) / rules
    runs_per_h = spec.submissions_per_h + spec.jobs * spec.scheduled * fires
    return runs_per_h * tasks * task_s * (1 + spec.fail_p * spec.retries)


def _poisson(rng: random.Random, per_h: float, horizon_s: float) -> list[float]:
    times: list[float] = []
    if per_h <= 0:
        return times
    at_s = rng.expovariate(per_h / 3600)
    while at_s < horizon_s:
        times.append(at_s)
        at_s += rng.expovariate(per_h / 3600)
    return times


def _pick(rng: random.Random, weights: Mapping[str, float]) -> str:
    names = sorted(weights)
    return rng.choices(names, [weights[n] for n in names])[0]


def _job(index: int, spec: WorkloadSpec, rng: random.Random) -> JobDefinition:
    shape = _pick(rng, spec.shapes)
    table: dict[str, Any] = {
        "name": f"job-{index:05d}-{shape}",
        "group": rng.choice(spec.groups),
        "priority": _pick(rng, spec.priorities),
        "tasks": _SHAPES[shape](spec, rng),
    }
    if rng.random() < spec.scheduled:
        table["schedule"] = _schedule(spec, rng)
    return parse_job(table)


def _task(spec: WorkloadSpec, rng: random.Random, name: str, **extra: Any) -> dict[str, Any]:
    low, high = spec.task_s
    mean_s = math.exp(rng.uniform(math.log(low), math.log(high)))  # log-uniform: many short tasks, a few long
    task: dict[str, Any] = {
        "name": name, "run": BODY,
        "params": {"sim_s": round(mean_s, 3), "sim_fail": round(rng.uniform(0, spec.fail_p), 4)},
        "retries": rng.randint(0, spec.retries),
        "retry_delay": round(rng.uniform(*spec.retry_delay_s), 3),
        "lost_retries": rng.choice((0, 1, 3, 3, 3)),
        **extra,
    }
    if rng.random() < spec.timeout_share:
        task["timeout"] = round(mean_s * rng.uniform(2, 6), 3)
    return task


def _single(spec: WorkloadSpec, rng: random.Random) -> list[dict[str, Any]]:
    return [_task(spec, rng, "t1")]


def _chain(spec: WorkloadSpec, rng: random.Random) -> list[dict[str, Any]]:
    tasks = [_task(spec, rng, "t1")]
    for i in range(2, rng.randint(2, 6) + 1):
        condition = "ended" if rng.random() < 0.2 else "succeeded"
        tasks.append(_task(spec, rng, f"t{i}", after={f"t{i - 1}": condition}))
    return tasks


def _fan(spec: WorkloadSpec, rng: random.Random) -> list[dict[str, Any]]:
    width = rng.randint(2, 8)
    branches = [_task(spec, rng, f"b{i}", after={"root": "succeeded"}, ignore_failure=rng.random() < 0.2)
                for i in range(1, width + 1)]
    condition = "ended" if rng.random() < 0.5 else "succeeded"
    join = _task(spec, rng, "join", after={b["name"]: condition for b in branches},
                 when="any" if rng.random() < 0.2 else "all")
    return [_task(spec, rng, "root"), *branches, join]


def _ax(spec: WorkloadSpec, rng: random.Random) -> list[dict[str, Any]]:
    """The AX 2009 walkthrough: TASK2 decides between the success branch (3, 4, 7) and the failure branch (5)."""
    tasks = [_task(spec, rng, "TASK1"),
             _task(spec, rng, "TASK2", after={"TASK1": "ended"}),
             _task(spec, rng, "TASK3", after={"TASK2": "succeeded"}),
             _task(spec, rng, "TASK4", after={"TASK2": "succeeded"}),
             _task(spec, rng, "TASK5", after={"TASK2": "failed"}),
             _task(spec, rng, "TASK6", after={"TASK3": "failed"}),
             _task(spec, rng, "TASK7", after={"TASK3": "succeeded", "TASK4": "succeeded"}, when="all")]
    tasks[1]["params"]["sim_fail"] = 0.5  # so that both branches run, run after run
    tasks[1]["retries"] = 0
    return tasks


_SHAPES = {"single": _single, "chain": _chain, "fan": _fan, "ax": _ax}


def _clock(spec: WorkloadSpec, rng: random.Random) -> str:
    first, last = (int(t[:2]) * 60 + int(t[3:]) for t in spec.fire_window)
    minute = rng.randrange(first, last + 1, 5) if last >= first else first
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _schedule(spec: WorkloadSpec, rng: random.Random) -> dict[str, Any]:
    kind = _pick(rng, spec.rules)
    rule: dict[str, Any]
    if kind == "every":
        rule = {"every": rng.choice(spec.every)}
    elif kind == "hourly":
        rule = {"hourly": f":{rng.randrange(0, 60, 5):02d}"}
    elif kind == "daily":
        rule = {"daily": _clock(spec, rng)}
    elif kind == "weekly":
        rule = {"weekly": {"days": _weekdays(rng), "at": _clock(spec, rng)}}
    elif kind == "monthly-last":
        rule = {"monthly": {"day": "last", "at": _clock(spec, rng)}}
    elif kind == "cron":
        hour, minute = _clock(spec, rng).split(":")
        rule = {"cron": rng.choice(CRON_TEMPLATES).format(m=int(minute), h=int(hour))}
    else:
        raise ValueError(f"unknown schedule kind {kind!r}; use every, hourly, daily, weekly, monthly-last or cron")
    return {**rule, "timezone": rng.choice(spec.timezones), "misfire": rng.choice(MISFIRE_POLICIES),
            "overlap": rng.choice(OVERLAP_POLICIES)}


def _weekdays(rng: random.Random) -> list[str]:
    chosen: Sequence[str] = rng.sample(WEEKDAYS, rng.randint(1, 5))
    return [d for d in WEEKDAYS if d in chosen]


# ---- the hostile user: values at the limits, which must work, and past them, which the gateway must refuse ----

HOSTILE_NAME = "hostile-".ljust(MAX_NAME_CHARS, "x")


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value


def hostile_job(group: str, job: Mapping[str, Any] | None = None, task: Mapping[str, Any] | None = None
                ) -> dict[str, Any]:
    """A job at the limits: the longest names, deep params, retries at once, the longest timeout, and a schedule
    that first fires near the last time the system represents; `job` and `task` replace some of its keys."""
    params = {"sim_s": 5.0, "sim_fail": 0.5, "deep": _nested(MAX_PARAMS_DEPTH - 2), "big": 2**64 - 1,
              "small": -(2**63)}
    body = {"name": "t".ljust(MAX_NAME_CHARS, "t"), "run": BODY, "retries": 5, "retry_delay": "0s",
            "timeout": "366d", "params": params, **(task or {})}
    return {"name": HOSTILE_NAME, "group": group, "description": "d" * 10_000, "tasks": [body],
            "schedule": {"every": "3650d", "start": "8999-01-01T00:00:00Z", "jitter": "366d"}, **(job or {})}


REFUSED_JOBS: tuple[tuple[str, dict[str, Any], dict[str, Any]], ...] = (  # what, job keys, task keys
    ("a name ending in a newline", {"name": "abc\n"}, {}),
    ("an unknown priority", {"priority": "urgent"}, {}),
    ("every 3000000d", {"schedule": {"every": "3000000d"}}, {}),
    ("a schedule starting in year 1", {"schedule": {"daily": "02:00", "start": "0001-01-01T00:00:00"}}, {}),
    ("a jitter of 3000000d", {"schedule": {"daily": "02:00", "jitter": "3000000d"}}, {}),
    ("retry_delay 3000000d", {}, {"retry_delay": "3000000d"}),
    ("timeout 1e15", {}, {"timeout": 1e15}),
    ("an integer over 2**64", {}, {"params": {"n": 2**64}}),
    ("params nested 40 deep", {}, {"params": {"deep": _nested(40)}}),
    ("a parent that does not exist", {}, {"after": {"zzz": "weird"}}),
)
HOSTILE_RUNS: tuple[tuple[dict[str, Any], datetime | None], ...] = (
    ({"deep": _nested(MAX_PARAMS_DEPTH - 1), "big": 2**64 - 1, "text": "x" * 60_000}, None),
    ({}, LATEST - timedelta(days=1)),  # far in the future: the user cancels it a little later
)
REFUSED_RUNS: tuple[tuple[str, dict[str, Any], datetime | None], ...] = (
    ("a run-later time in year 1", {}, datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))),
    ("a run-later time in year 9999", {}, datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5)))),
    ("a run-later time without a zone", {}, datetime(2026, 12, 1)),
    ("an integer over 2**64", {"n": 2**64}, None),
    ("nan", {"x": math.nan}, None),
    ("params nested 40 deep", {"deep": _nested(40)}, None),
)
