"""The Run state machine, pure: no store, no threads, no sleeps; time is a value."""

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import pytest

import actorbatch
from actorbatch.api import load_job_file
from actorbatch.domain.jobfile import parse_job
from actorbatch.domain.jobs import JobDefinition
from actorbatch.domain.runs import AttemptLost, ResultIgnored, Run, TaskFailed
from tests.conftest import T0

EXAMPLES = Path(__file__).parent.parent / "src" / "actorbatch" / "examples"
RUN_ID = UUID(int=1)


def new_run(definition: JobDefinition, params: dict[str, object] | None = None) -> Run:
    run = Run()
    run.apply(Run.create(RUN_ID, definition, 1, params or {}, "tester", T0, T0))
    return run


def drive(run: Run, outcome: Callable[[str], str | None], step_s: float = 1.0) -> list[str]:
    """Claim and finish tasks in waves until the run is complete; returns the order tasks ran in."""
    order, now = [], T0
    while not run.complete:
        ready = run.claimable(now)
        if not ready:
            now += timedelta(seconds=step_s)
            assert now < T0 + timedelta(days=1), "run never completes"
            continue
        for task in ready:
            claim = run.claim(task, "s1", now, 30)
            run.apply(claim)
            run.apply(run.finish(task, claim.attempt, now, exit_status=outcome(task)))
            order.append(task)
    return order


def walkthrough() -> JobDefinition:
    return load_job_file(EXAMPLES / "ax2009-walkthrough.toml")[0]


def statuses(run: Run) -> dict[str, str]:
    return {name: t.status for name, t in run.tasks.items()}


def test_walkthrough_with_task2_failing_runs_the_failure_branch() -> None:
    run = new_run(walkthrough())
    order = drive(run, lambda t: "boom" if t == "TASK2" else None)
    assert order == ["TASK1", "TASK2", "TASK5"]
    assert statuses(run) == {"TASK1": "succeeded", "TASK2": "failed", "TASK3": "skipped", "TASK4": "skipped",
                             "TASK5": "succeeded", "TASK6": "skipped", "TASK7": "skipped"}
    assert run.status(T0) == "failed"


def test_walkthrough_with_task2_succeeding_runs_the_success_branch() -> None:
    run = new_run(walkthrough())
    order = drive(run, lambda t: None)
    assert order[:2] == ["TASK1", "TASK2"] and set(order[2:4]) == {"TASK3", "TASK4"} and order[4] == "TASK7"
    assert statuses(run) == {"TASK1": "succeeded", "TASK2": "succeeded", "TASK3": "succeeded",
                             "TASK4": "succeeded", "TASK5": "skipped", "TASK6": "skipped", "TASK7": "succeeded"}
    assert run.status(T0) == "succeeded"


def test_task2_runs_on_completion_of_task1_even_when_it_fails() -> None:
    run = new_run(walkthrough())
    drive(run, lambda t: "boom" if t == "TASK1" else None)
    assert statuses(run)["TASK2"] == "succeeded"
    assert run.status(T0) == "failed"


def test_task6_runs_when_task3_fails_and_task7_is_skipped() -> None:
    run = new_run(walkthrough())
    drive(run, lambda t: "boom" if t == "TASK3" else None)
    s = statuses(run)
    assert (s["TASK6"], s["TASK7"], s["TASK4"]) == ("succeeded", "skipped", "succeeded")


def job(*tasks: dict[str, object]) -> JobDefinition:
    return parse_job({"name": "j", "tasks": list(tasks)})


def test_when_any_runs_after_the_first_met_condition_and_skips_when_none_can_be() -> None:
    definition = job({"name": "a", "run": "m:f"}, {"name": "b", "run": "m:f"},
                     {"name": "c", "run": "m:f", "after": {"a": "succeeded", "b": "succeeded"}, "when": "any"})
    run = new_run(definition)
    drive(run, lambda t: "boom" if t == "a" else None)
    assert statuses(run)["c"] == "succeeded"
    run = new_run(definition)
    drive(run, lambda t: "boom" if t in ("a", "b") else None)
    assert statuses(run)["c"] == "skipped"


def test_when_any_is_ready_before_all_parents_end() -> None:
    definition = job({"name": "a", "run": "m:f"}, {"name": "b", "run": "m:f"},
                     {"name": "c", "run": "m:f", "after": {"a": "succeeded", "b": "succeeded"}, "when": "any"})
    run = new_run(definition)
    claim = run.claim("a", "s1", T0, 30)
    run.apply(claim)
    run.apply(run.finish("a", 1, T0, exit_status=None))
    assert run.tasks["c"].status == "ready" and run.tasks["b"].status == "ready"


def test_ignore_failure_keeps_the_run_successful_but_conditions_see_the_failure() -> None:
    definition = job({"name": "a", "run": "m:f", "ignore_failure": True},
                     {"name": "b", "run": "m:f", "after": {"a": "failed"}})
    run = new_run(definition)
    drive(run, lambda t: "boom" if t == "a" else None)
    assert statuses(run) == {"a": "failed", "b": "succeeded"}
    assert run.status(T0) == "succeeded"


def test_skip_propagates_down_a_chain() -> None:
    definition = job({"name": "a", "run": "m:f"}, {"name": "b", "run": "m:f", "after": {"a": "succeeded"}},
                     {"name": "c", "run": "m:f", "after": {"b": "ended"}})
    run = new_run(definition)
    drive(run, lambda t: "boom")
    assert statuses(run) == {"a": "failed", "b": "skipped", "c": "skipped"}


def test_retries_wait_with_doubling_delay_capped_at_ten_times() -> None:
    definition = job({"name": "a", "run": "m:f", "retries": 6, "retry_delay": "10s"})
    run = new_run(definition)
    now, waits = T0, []
    for attempt in range(1, 8):
        claim = run.claim("a", "s1", now, 30)
        assert claim.attempt == attempt
        run.apply(claim)
        run.apply(run.finish("a", attempt, now, exit_status="boom"))
        state = run.tasks["a"]
        if state.status == "failed":
            break
        assert state.not_before is not None
        waits.append((state.not_before - now).total_seconds())
        assert run.claimable(state.not_before - timedelta(microseconds=1)) == []
        now = state.not_before
    assert waits == [10, 20, 40, 80, 100, 100]
    assert run.tasks["a"].status == "failed" and run.tasks["a"].attempt == 7


def test_lost_attempts_retry_without_using_retries_then_fail() -> None:
    definition = job({"name": "a", "run": "m:f", "retries": 0, "lost_retries": 2})
    run = new_run(definition)
    now = T0
    for attempt in (1, 2, 3):
        run.apply(run.claim("a", f"s{attempt}", now, 30))
        lease_until = now + timedelta(seconds=30)
        assert run.expire("a", now + timedelta(seconds=29), lease_until) is None
        now += timedelta(seconds=31)
        lost = run.expire("a", now, lease_until)
        assert isinstance(lost, AttemptLost) and lost.attempt == attempt
        run.apply(lost)
    state = run.tasks["a"]
    assert state.status == "failed" and state.attempt == 3 and state.failures == 0
    assert state.exit_status == "lost: server s3 stopped responding"


def test_a_result_from_a_stale_attempt_is_recorded_but_changes_nothing() -> None:
    run = new_run(job({"name": "a", "run": "m:f"}))
    run.apply(run.claim("a", "s1", T0, 30))
    run.apply(run.expire("a", T0 + timedelta(seconds=60), T0 + timedelta(seconds=30)))  # type: ignore[arg-type]
    run.apply(run.claim("a", "s2", T0 + timedelta(seconds=61), 30))
    late = run.finish("a", 1, T0 + timedelta(seconds=62), exit_status="boom")
    assert isinstance(late, ResultIgnored)
    run.apply(late)
    assert run.tasks["a"].status == "running" and run.tasks["a"].attempt == 2
    current = run.finish("a", 2, T0 + timedelta(seconds=63), exit_status="boom")
    assert isinstance(current, TaskFailed)


def test_cancel_ends_every_open_task_and_the_run() -> None:
    run = new_run(walkthrough())
    run.apply(run.claim("TASK1", "s1", T0, 30))
    cancel = run.cancel("boss", T0)
    assert cancel is not None
    run.apply(cancel)
    assert set(statuses(run).values()) == {"cancelled"}
    assert run.status(T0) == "cancelled" and run.cancel("boss", T0) is None
    assert isinstance(run.finish("TASK1", 1, T0, exit_status=None), ResultIgnored)


def test_a_run_due_later_is_scheduled_until_due() -> None:
    run = Run()
    run.apply(Run.create(RUN_ID, job({"name": "a", "run": "m:f"}), 1, {}, "t", T0 + timedelta(hours=1), T0))
    assert run.status(T0) == "scheduled" and run.claimable(T0) == []
    assert run.status(T0 + timedelta(hours=1)) == "running"
    assert run.claimable(T0 + timedelta(hours=1)) == ["a"]


def test_snapshot_round_trips_through_plain_data() -> None:
    run = new_run(walkthrough())
    drive(run, lambda t: "boom" if t == "TASK2" else None)
    assert run.definition is not None
    copy = Run.from_dict(run.to_dict(), run.definition)
    assert copy.to_dict() == run.to_dict()


def test_claiming_a_task_that_is_not_ready_is_refused() -> None:
    run = new_run(job({"name": "a", "run": "m:f"}, {"name": "b", "run": "m:f", "after": {"a": "succeeded"}}))
    with pytest.raises(AssertionError):
        run.claim("b", "s1", T0, 30)


def test_a_bulk_submit_creates_every_run_in_one_transaction_or_none(client: actorbatch.Client) -> None:
    client.add_job(parse_job({"name": "bulk", "tasks": [{"name": "t", "run": "actorbatch.examples:noop"}]}))
    ids = client.run_many("bulk", [{"i": i} for i in range(500)])
    assert len(set(ids)) == 500
    assert sorted(r["id"] for r in client.runs(job="bulk", limit=1000)) == sorted(map(str, ids))
    assert [client.run(ids[7])["params"]] == [{"i": 7}]
    head = client.store.head()
    with pytest.raises(actorbatch.InvalidJob):
        client.run_many("bulk", [{"i": 1}, {"i": float("nan")}])
    assert client.store.head() == head
