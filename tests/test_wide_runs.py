"""Wide runs: the work of one event is proportional to the tasks it touches, never to the size of its run.

These tests count work (tasks scanned, conditions evaluated, index entries held), not time.
"""

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest

import actorbatch.domain.runs as runs_module
from actorbatch.behaviours.leasing import LeaseBehaviour
from actorbatch.domain.jobfile import parse_job
from actorbatch.domain.jobs import JobDefinition
from actorbatch.domain.runs import Run, RunEvent
from tests.conftest import T0

WIDTH = 300


class Watched(dict[str, Any]):
    """A run's task table that counts every walk over all of it."""

    walks = 0

    def values(self) -> Any:
        Watched.walks += 1
        return super().values()

    def items(self) -> Any:
        Watched.walks += 1
        return super().items()

    def __iter__(self) -> Iterator[str]:
        Watched.walks += 1
        return super().__iter__()


def wide(width: int = WIDTH, join: str | None = None, retries: int = 0) -> JobDefinition:
    """`width` independent tasks, and optionally a task `join` after all of them (`when` all or any)."""
    tasks: list[dict[str, Any]] = [{"name": f"t{i}", "run": "m:f", "retries": retries} for i in range(width)]
    if join is not None:
        after = {f"t{i}": "succeeded" for i in range(width)}
        tasks.append({"name": "join", "run": "m:f", "when": join, "after": after})
    return parse_job({"name": "wide", "tasks": tasks})


def book(definition: JobDefinition) -> tuple[LeaseBehaviour, Run]:
    lm = LeaseBehaviour("s1", ["default"], 30)
    lm.observe([Run.create(UUID(int=1), definition, 1, {}, "u", T0, T0)])
    run = lm.runs[UUID(int=1)]
    run.tasks = Watched(run.tasks)
    Watched.walks = 0
    return lm, run


def work_through(lm: LeaseBehaviour, free: int = 10, fail: frozenset[str] = frozenset()) -> int:
    """Claim and finish everything the book offers, `free` at a time; returns the most index entries held."""
    now, most = T0, 0
    while claims := lm.claims(now, free):
        for attempt in lm.claimed(claims):
            lm.finish(attempt, now, "boom" if attempt.task in fail else None)
        most = max(most, len(lm._ready) + len(lm._later))
        now += timedelta(seconds=1)
    return most


def test_claims_and_outcomes_never_walk_the_whole_run() -> None:
    lm, run = book(wide(join="all"))
    work_through(lm)
    assert run.complete and run.status(T0) == "succeeded"
    assert Watched.walks == 0


def test_the_ready_index_holds_each_ready_task_once() -> None:
    lm, _ = book(wide())
    assert work_through(lm, free=1) <= WIDTH


def test_retries_enter_the_index_once_per_retry() -> None:
    lm, run = book(wide(retries=1))
    now = T0
    for attempt in lm.claimed(lm.claims(now, WIDTH)):
        lm.finish(attempt, now, "boom")
    assert len(lm._ready) + len(lm._later) <= WIDTH
    later = now + timedelta(hours=1)
    lm.wake_due(later)
    for attempt in lm.claimed(lm.claims(later, WIDTH)):
        lm.finish(attempt, later, None)
    assert run.complete and lm.runs == {}


@pytest.mark.parametrize("when", ["all", "any"])
def test_a_join_counts_each_parent_once(when: str, monkeypatch: pytest.MonkeyPatch) -> None:
    evaluated = 0
    condition = runs_module.condition_met

    def counting(parent_status: str, wanted: str) -> bool | None:
        nonlocal evaluated
        evaluated += 1
        return condition(parent_status, wanted)

    monkeypatch.setattr(runs_module, "condition_met", counting)
    lm, run = book(wide(join=when))
    work_through(lm, fail=frozenset({"t0"}))
    assert run.tasks["join"].status == ("skipped" if when == "all" else "succeeded")
    assert evaluated <= WIDTH


def succeeded(run: Run, task: str, attempt: int) -> RunEvent:
    event = run.finish(task, attempt, T0, exit_status=None)
    assert isinstance(event, RunEvent)
    return event


def test_a_run_read_back_mid_way_folds_on_exactly_like_the_original() -> None:
    definition = wide(width=6, join="all")
    original = Run()
    original.apply(Run.create(UUID(int=1), definition, 1, {}, "u", T0, T0))
    for task in ("t0", "t1", "t2"):
        original.apply(claim := original.claim(task, "s1", T0, 30))
        original.apply(succeeded(original, task, claim.attempt))
    copy = Run.from_dict(original.to_dict(), definition)
    for task in ("t3", "t4", "t5"):
        for run in (original, copy):
            run.apply(claim := run.claim(task, "s1", T0, 30))
            run.apply(succeeded(run, task, claim.attempt))
    assert copy.to_dict() == original.to_dict()
    assert copy.claimable(T0) == original.claimable(T0) == ["join"]
