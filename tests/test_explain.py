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


def test_a_ready_task_says_what_it_waits_for_and_a_kept_task_where_it_comes_from() -> None:
    from uuid import UUID

    from actorbatch.domain.retries import retry
    from actorbatch.domain.runs import Run

    run = new_run(parse_job({"name": "j", "group": "reports", "tasks": [
        {"name": "a", "run": "m:f"}, {"name": "b", "run": "m:f", "after": {"a": "succeeded"}}]}))
    assert run.due_at is not None
    assert explain(run)["a"][-1] == (f"ready: starts when the run is due ({run.due_at.isoformat()}) and a live "
                                     "server of group 'reports' has a free thread (see `server list`)")
    run.apply(run.claim("a", "s1", T0, 30))
    run.apply(run.finish("a", 1, T0, exit_status=None, result=7))
    run.apply(run.claim("b", "s1", T0, 30))
    run.apply(run.finish("b", 1, T0, exit_status="boom"))
    created, link = retry(run, UUID(int=9), "u", T0 + timedelta(minutes=1), everything=False)
    again = Run()
    again.apply(created)
    assert created.kept == {"a": 7}
    assert explain(again)["a"][-1] == f"kept from run {run.id}: it succeeded there, as did every task it depends on"
    assert again.tasks["a"].result == 7 and again.tasks["b"].status == "ready"
    run.apply(link)
    assert run.retried_by == (UUID(int=9),)
