"""`explain`: the reasons are derived from the run's state, so they change as the run does."""

from datetime import timedelta

from actorbatch.domain.explain import explain
from actorbatch.domain.jobfile import parse_job
from tests.conftest import T0
from tests.test_runs import drive, new_run, walkthrough


def test_a_skipped_task_names_the_condition_that_can_never_be_met() -> None:
    run = new_run(walkthrough())
    drive(run, lambda t: "boom" if t == "TASK2" else None)
    reasons = explain(run)
    assert reasons["TASK3"] == ["was skipped because it needs all of: TASK2 succeeded: never met (TASK2 is failed)"]
    assert reasons["TASK5"][0] == "needed all of: TASK2 failed: met (TASK2 is failed)"
    assert reasons["TASK2"][1].startswith("attempt 1 on server s1: boom")


def test_a_waiting_task_names_what_it_waits_for_and_a_retry_its_time() -> None:
    run = new_run(parse_job({"name": "j", "tasks": [
        {"name": "a", "run": "m:f", "retries": 1, "retry_delay": "30s"},
        {"name": "b", "run": "m:f", "after": {"a": "succeeded"}}]}))
    run.apply(run.claim("a", "s1", T0, 30))
    run.apply(run.finish("a", 1, T0, exit_status="boom"))
    reasons = explain(run)
    assert reasons["b"] == ["waits for all of: a succeeded: not yet decided (a is ready)"]
    assert reasons["a"][-1] == f"retry 1 of 1 waits until {(T0 + timedelta(seconds=30)).isoformat()}"
    assert list(explain(run, "a")) == ["a"]
