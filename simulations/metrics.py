"""The figures of a report, from an event log alone: the simulator's, a what-if replay's, or a real store's.

One pass folds the log with the domain's Run and follows every task: when it became claimable (ready, due, its
retry delay over), when it was claimed, how each attempt ended. From that: throughput, how late runs started,
how long tasks waited for a thread, the queue depth and the work running over time, per-server utilisation,
retries, lost attempts and results that fencing ignored.
"""

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from actorbatch.domain.events import Event
from actorbatch.domain.runs import (
    AttemptLost,
    FireSkipped,
    ResultIgnored,
    Run,
    RunEvent,
    TaskClaimed,
    TaskFailed,
)

Capacity = Callable[[datetime], int]
PERCENTILES = (50, 90, 99)


@dataclass
class Series:
    """Values per time bucket: bucket i covers [start + i * bucket_s, start + (i + 1) * bucket_s)."""

    start: datetime
    bucket_s: float
    values: list[float]


@dataclass
class Metrics:
    start: datetime
    end: datetime
    counts: dict[str, int]
    run_start_late_s: dict[str, float]  # run started (first task) minus due: p50, p90, p99, max
    task_wait_s: dict[str, float]  # task claimable until claimed
    run_duration_s: dict[str, float]  # due until complete
    throughput_per_h: float  # tasks ended (succeeded or failed) per hour
    peak_throughput_per_h: float
    utilisation: dict[str, float]  # per server: busy thread-seconds / thread-seconds it offered while up
    queue: Series  # tasks claimable but not claimed, sampled at each bucket's start
    running: Series  # attempts running, averaged over each bucket
    ended: Series  # tasks ended per bucket
    capacity: Series  # threads the servers offered, averaged over each bucket
    busy: dict[str, Series] = field(default_factory=dict)  # per server: busy share of its threads per bucket
    late_samples_s: list[float] = field(default_factory=list)  # every run's start lateness, for a distribution

    def to_json(self) -> dict[str, Any]:
        def series(s: Series) -> dict[str, Any]:
            return {"start": s.start.isoformat(), "bucket_s": s.bucket_s, "values": [round(v, 3) for v in s.values]}

        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "counts": self.counts,
                "run_start_late_s": self.run_start_late_s, "task_wait_s": self.task_wait_s,
                "run_duration_s": self.run_duration_s, "throughput_per_h": round(self.throughput_per_h, 1),
                "peak_throughput_per_h": round(self.peak_throughput_per_h, 1),
                "utilisation": {k: round(v, 4) for k, v in self.utilisation.items()},
                "queue": series(self.queue), "running": series(self.running), "ended": series(self.ended),
                "capacity": series(self.capacity), "busy": {k: series(v) for k, v in self.busy.items()}}


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50, p90, p99 and max (nearest rank), rounded; empty when there are no values."""
    ordered = sorted(values)
    if not ordered:
        return {}
    result = {f"p{p}": ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)] for p in PERCENTILES}
    result["max"] = ordered[-1]
    return {k: round(v, 3) for k, v in result.items()}


def measure(events: Iterable[Event], start: datetime, end: datetime, capacities: Mapping[str, Capacity],
            up: Mapping[str, Sequence[tuple[datetime, datetime]]], buckets: int = 288) -> Metrics:
    """Metrics of the log over [start, end]; `capacities` and `up` say what each server offered, and when."""
    runs: dict[UUID, Run] = {}
    claimable: dict[tuple[UUID, str], datetime] = {}  # queued tasks -> since when
    queued: list[tuple[datetime, datetime]] = []  # every stretch a task waited for a thread
    waits: list[float] = []
    counts = {"lost_attempts": 0, "ignored_results": 0, "task_failures": 0, "fire_skips": 0, "claims": 0}
    for event in events:
        if isinstance(event, FireSkipped):
            counts["fire_skips"] += 1
        if not isinstance(event, RunEvent):
            continue
        run = runs.setdefault(event.originator_id, Run())
        before = {name: t.status for name, t in run.tasks.items()}
        run.apply(event)
        if isinstance(event, TaskClaimed):
            counts["claims"] += 1
            since = claimable.pop((run.id, event.task), None)
            if since is not None:
                waits.append(max(0.0, (event.timestamp - since).total_seconds()))
                queued.append((since, max(since, event.timestamp)))
        counts["lost_attempts"] += isinstance(event, AttemptLost)
        counts["ignored_results"] += isinstance(event, ResultIgnored)
        counts["task_failures"] += isinstance(event, TaskFailed)
        for name, task in run.tasks.items():
            key = (run.id, name)
            if task.status == "ready" and (before.get(name) != "ready" or key not in claimable):
                assert run.due_at is not None
                claimable[key] = max(event.timestamp, run.due_at, task.not_before or run.due_at)
            elif task.status != "ready" and key in claimable:
                since = claimable.pop(key)
                queued.append((since, max(since, event.timestamp)))
    queued.extend((since, max(since, end)) for since in claimable.values())
    return _figures(runs, queued, waits, counts, start, end, capacities, up, buckets)


def _figures(runs: Mapping[UUID, Run], queued: list[tuple[datetime, datetime]], waits: list[float],
             counts: dict[str, int], start: datetime, end: datetime, capacities: Mapping[str, Capacity],
             up: Mapping[str, Sequence[tuple[datetime, datetime]]], buckets: int) -> Metrics:
    span_s = max((end - start).total_seconds(), 1.0)
    bucket_s = span_s / buckets
    late, durations, ended_at = [], [], []
    attempts: dict[str, list[tuple[datetime, datetime]]] = {}
    statuses: dict[str, int] = {}
    for run in runs.values():
        status = run.status(end)
        statuses[f"runs_{status}"] = statuses.get(f"runs_{status}", 0) + 1
        if run.started_at is not None and run.due_at is not None:
            late.append(max(0.0, (run.started_at - run.due_at).total_seconds()))
        if run.ended_at is not None and run.due_at is not None and run.complete and not run.cancelled:
            durations.append((run.ended_at - run.due_at).total_seconds())
        for task in run.tasks.values():
            statuses[f"tasks_{task.status}"] = statuses.get(f"tasks_{task.status}", 0) + 1
            if task.status in ("succeeded", "failed") and task.ended_at is not None:
                ended_at.append(task.ended_at)
            for entry in task.history:
                attempts.setdefault(entry["server"], []).append((entry["started_at"], entry["ended_at"] or end))
    counts = {"runs": len(runs), **dict(sorted(statuses.items())), **counts, "retries": counts["task_failures"]
              - statuses.get("tasks_failed", 0)}
    ended = _histogram(ended_at, start, bucket_s, buckets)
    busy = {server: _occupancy(spans, start, bucket_s, buckets) for server, spans in sorted(attempts.items())}
    offered = {name: _offered(capacities[name], up.get(name, ()), start, bucket_s, buckets) for name in capacities}
    utilisation = {name: sum(busy[name].values) / total if (total := sum(offered[name].values)) else 0.0
                   for name in sorted(offered) if name in busy}
    shares = {name: Series(start, bucket_s, [b / o if o else 0.0 for b, o in zip(busy[name].values,
                                                                               offered[name].values, strict=True)])
              for name in utilisation}
    running = [sum(s.values[i] for s in busy.values()) for i in range(buckets)]
    capacity = [sum(s.values[i] for s in offered.values()) for i in range(buckets)]
    hours = span_s / 3600
    return Metrics(
        start=start, end=end, counts=counts, run_start_late_s=percentiles(late), task_wait_s=percentiles(waits),
        run_duration_s=percentiles(durations), throughput_per_h=len(ended_at) / hours,
        peak_throughput_per_h=max(ended.values, default=0.0) * 3600 / bucket_s, utilisation=utilisation,
        queue=_depth(queued, start, bucket_s, buckets), running=Series(start, bucket_s, running),
        ended=ended, capacity=Series(start, bucket_s, capacity), busy=shares, late_samples_s=late)


def _histogram(moments: Iterable[datetime], start: datetime, bucket_s: float, buckets: int) -> Series:
    values = [0.0] * buckets
    for moment in moments:
        i = int((moment - start).total_seconds() // bucket_s)
        if 0 <= i < buckets:
            values[i] += 1
    return Series(start, bucket_s, values)


def _depth(spans: Iterable[tuple[datetime, datetime]], start: datetime, bucket_s: float, buckets: int) -> Series:
    """How many spans cover each bucket's start."""
    changes = [0] * (buckets + 1)
    for since, until in spans:
        first = max(0, math.ceil((since - start).total_seconds() / bucket_s))
        last = min(buckets, math.ceil((until - start).total_seconds() / bucket_s))
        if first < last:
            changes[first] += 1
            changes[last] -= 1
    values, level = [], 0
    for i in range(buckets):
        level += changes[i]
        values.append(float(level))
    return Series(start, bucket_s, values)


def _occupancy(spans: Iterable[tuple[datetime, datetime]], start: datetime, bucket_s: float,
               buckets: int) -> Series:
    """Average number of spans in progress over each bucket (busy thread-seconds / bucket_s)."""
    values = [0.0] * buckets
    for since, until in spans:
        a = max(0.0, (since - start).total_seconds())
        b = min(buckets * bucket_s, (until - start).total_seconds())
        i = int(a // bucket_s)
        while a < b and i < buckets:
            edge = min(b, (i + 1) * bucket_s)
            values[i] += (edge - a) / bucket_s
            a, i = edge, i + 1
    return Series(start, bucket_s, values)


def _offered(capacity: Capacity, up: Sequence[tuple[datetime, datetime]], start: datetime, bucket_s: float,
             buckets: int) -> Series:
    """Threads a server offered, averaged over each bucket: its capacity at the bucket's middle, while up."""
    up_share = _occupancy(up, start, bucket_s, buckets).values
    middle = timedelta(seconds=bucket_s / 2)
    return Series(start, bucket_s, [capacity(start + timedelta(seconds=i * bucket_s) + middle) * up_share[i]
                                    for i in range(buckets)])
