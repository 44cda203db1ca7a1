"""`explain`: the reasons are derived from the run's state, so they change as the run does."""

from collections.abc import Callable, Iterator
from datetime import timedelta
from uuid import UUID

import pytest

import actorbatch
from actorbatch.clock import ManualClock
from actorbatch.domain.events import Event, job_id
from actorbatch.domain.explain import explain
from actorbatch.domain.jobfile import parse_job
from actorbatch.domain.jobs import JobDefinition
from actorbatch.domain.runs import FireSkipped, Run, scheduled_run_id
from actorbatch.domain.servers import Server, parse_window
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


# ---- every wait, through the API, citing the events behind each answer ----

def _pay(**extra: object) -> JobDefinition:
    return parse_job({"name": "pay", "tasks": [{"name": "a", "run": "m:f", **extra},
                                               {"name": "b", "run": "m:f", "after": {"a": "succeeded"}}]})


def _append(client: actorbatch.Client, run_id: UUID, decide: Callable[[Run], Event | None]) -> None:
    run = client.store.load(Run, run_id)
    assert run is not None
    event = decide(run)
    assert event is not None
    client.store.append(event)


def _cited(client: actorbatch.Client, ref: object, task: str) -> list[tuple[str, list[str]]]:
    """(text, ["subject vN action", ...]) of each reason for `task`."""
    found = client.explain(str(ref), task if task not in ("fire", "job") else None, cite=True)[task]
    return [(r["text"], [f"{c['subject']} v{c['version']} {c['action']}" for c in r["events"]]) for r in found]


@pytest.fixture
def pay(db_url: str, clock: ManualClock) -> Iterator[tuple[actorbatch.Client, UUID]]:
    with actorbatch.connect(db_url, user="alice", clock=clock) as client:
        client.add_job(_pay(retries=1, retry_delay="30s"))
        yield client, client.run_job("pay")


def test_a_skipped_task_cites_the_failure_that_decided_it(pay: tuple[actorbatch.Client, UUID],
                                                          clock: ManualClock) -> None:
    client, _ = pay
    client.add_job(_pay(), replace=True)
    other = client.run_job("pay")
    _append(client, other, lambda r: r.claim("a", "s1", clock.now(), 30))
    _append(client, other, lambda r: r.finish("a", 1, clock.now(), exit_status="exit 1"))
    assert _cited(client, other, "b")[0] == (
        "was skipped because it needs all of: a succeeded: never met (a is failed)", ["run v3 task.failed"])


def test_a_retry_names_the_next_attempts_time_and_the_failure(pay: tuple[actorbatch.Client, UUID],
                                                              clock: ManualClock) -> None:
    client, run_id = pay
    _append(client, run_id, lambda r: r.claim("a", "s1", clock.now(), 30))
    _append(client, run_id, lambda r: r.finish("a", 1, clock.now(), exit_status="exit 3"))
    next_at = (T0 + timedelta(seconds=30)).isoformat()
    assert (f"retry 1 of 1 waits until {next_at}", ["run v3 task.failed"]) in _cited(client, run_id, "a")
    assert (f"its next attempt may start at {next_at}", ["run v3 task.failed"]) in _cited(client, run_id, "a")


def test_a_lost_lease_names_the_dead_server(pay: tuple[actorbatch.Client, UUID], clock: ManualClock) -> None:
    client, run_id = pay
    _append(client, run_id, lambda r: r.claim("a", "ghost", clock.now(), 30))
    clock.advance(60)
    _append(client, run_id, lambda r: r.expire("a", clock.now(), T0 + timedelta(seconds=30)))
    text, events = _cited(client, run_id, "a")[2]
    assert text.startswith("attempt 1's lease ran out: server ghost stopped renewing it (it died or lost the store)")
    assert "lost attempt 1 of 3 allowed: it was retried at once" in text
    assert events == ["run v2 task.claimed", "run v3 task.lost"]


def test_a_cancelled_task_cites_the_cancellation(pay: tuple[actorbatch.Client, UUID]) -> None:
    client, run_id = pay
    client.cancel(run_id)
    assert _cited(client, run_id, "b")[-1] == ("cancelled by alice", ["run v2 run.cancelled"])


def test_a_missing_privilege_names_the_user_and_the_privilege(pay: tuple[actorbatch.Client, UUID],
                                                             clock: ManualClock) -> None:
    client, _ = pay
    client.add_job(_pay(), replace=True)
    other = client.run_job("pay")
    _append(client, other, lambda r: r.deny("a", "invoice.post", clock.now()))  # what a server decides
    assert _cited(client, other, "a")[-1] == (
        "failed without running: the run acts as alice, who lacks the privilege invoice.post; grant it "
        "(`actorbatch user grant alice invoice.post`) and retry the run", ["run v2 task.denied"])


def test_a_ready_task_without_a_live_server_of_its_group_says_so(pay: tuple[actorbatch.Client, UUID],
                                                                  clock: ManualClock) -> None:
    client, run_id = pay
    assert _cited(client, run_id, "a")[-1][0] == (
        "no live server serves group 'default' (none ever started): start one with "
        "`actorbatch server start --groups default`")
    server = Server()
    started = server.start("s1", ("default",), 2, 30.0, "host", 1, clock.now())
    server.apply(started)
    client.store.append(started, server.stop("drained", clock.now()))
    assert _cited(client, run_id, "a")[-1] == (
        f"no live server serves group 'default' (s1 stopped since {T0.isoformat()}): start one with "
        "`actorbatch server start --groups default`", ["server s1 v2 server.stopped"])


def test_a_window_of_0_threads_is_named(pay: tuple[actorbatch.Client, UUID], clock: ManualClock) -> None:
    client, run_id = pay
    started = Server().start("s1", ("default",), 2, 30.0, "host", 1, clock.now(),
                             [parse_window("mon 08:00-18:00=0")], "Europe/Berlin")  # T0: Monday 10:00 there
    client.store.append(started)
    assert _cited(client, run_id, "a")[-1] == (
        "every live server of group 'default' has 0 threads now (s1: window mon 08:00-18:00=0 in Europe/Berlin)",
        ["server s1 v1 server.heartbeat"])
    clock.advance(10)
    assert _cited(client, run_id, "a")[-1][0].startswith("every live server of group 'default' has 0 threads")


def test_a_fire_skipped_by_the_overlap_policy_is_explained_by_its_id(db_url: str, clock: ManualClock) -> None:
    with actorbatch.connect(db_url, user="alice", clock=clock) as client:
        client.add_job(parse_job({"name": "tick", "schedule": {"every": "1m", "overlap": "skip"},
                                  "tasks": [{"name": "t", "run": "m:f"}]}))
        fire = T0 + timedelta(minutes=2)
        skip_id = scheduled_run_id(job_id("tick"), fire)
        client.store.append(FireSkipped(originator_id=skip_id, originator_version=1, timestamp=fire, job="tick",
                                        fire_time=fire, reason="skipped: the previous run is still active"))
        assert _cited(client, skip_id, "fire") == [(
            f"no run for fire time {fire.isoformat()} of job tick: skipped: the previous run is still active "
            "(overlap policy 'skip')", ["fire v1 job.fire_skipped"])]


def test_fires_missed_while_down_and_the_misfire_decision_are_named(db_url: str, clock: ManualClock) -> None:
    with actorbatch.connect(db_url, user="alice", clock=clock) as client:
        client.add_job(parse_job({"name": "tick", "schedule": {"every": "1h", "misfire": "run-once"},
                                  "tasks": [{"name": "t", "run": "m:f"}]}))
        fire = T0 + timedelta(hours=3)
        clock.advance(3 * 3600 + 1800)  # the scheduler comes back half an hour after the third fire time
        definition = client.commands.job("tick").definition
        assert definition is not None
        run_id = scheduled_run_id(job_id("tick"), fire)
        client.store.append(Run.create(run_id, definition, 1, {}, "alice", fire, clock.now(), fire))
        text, events = _cited(client, run_id, "t")[-1]
        missed = f"{(T0 + timedelta(hours=1)).isoformat()}, {(T0 + timedelta(hours=2)).isoformat()}"
        assert text == (f"created at {clock.now().isoformat()}, 1800 s after its fire time {fire.isoformat()}: no "
                        "scheduler was running then; the job's misfire policy decided run-once: this one run, for "
                        f"the latest; the 2 earlier missed fire time(s) got none ({missed})")
        assert events == ["run v1 run.created"]


def test_an_unscheduled_job_says_who_unscheduled_it(db_url: str, clock: ManualClock) -> None:
    with actorbatch.connect(db_url, user="alice", clock=clock) as client:
        client.add_job(parse_job({"name": "tick", "schedule": {"every": "1h"},
                                  "tasks": [{"name": "t", "run": "m:f"}]}))
        assert _cited(client, "tick", "job")[0] == (
            f"scheduled since {T0.isoformat()} (job.added by alice); next fire time "
            f"{(T0 + timedelta(hours=1)).isoformat()}", ["job tick v1 job.added"])
        clock.advance(60)
        client.unschedule("tick")
        assert _cited(client, "tick", "job") == [(
            f"unscheduled at {clock.now().isoformat()} by alice: its fire times do not exist until "
            "`actorbatch job schedule tick` (none are missed meanwhile)", ["job tick v2 job.unscheduled"])]
        assert client.explain("tick") == {"job": [_cited(client, "tick", "job")[0][0]]}


def test_the_cli_prints_each_reason_with_its_events(pay: tuple[actorbatch.Client, UUID]) -> None:
    import json

    from typer.testing import CliRunner

    from actorbatch.cli.app import app

    client, run_id = pay
    client.cancel(run_id)
    runner = CliRunner()
    text = runner.invoke(app, ["--db", client.url, "explain", str(run_id), "--task", "b"])
    assert text.exit_code == 0 and "cancelled by alice" in text.stdout
    assert "events: run v2 run.cancelled" in text.stdout
    plain = json.loads(runner.invoke(app, ["--db", client.url, "explain", str(run_id), "--json"]).stdout)
    assert plain["b"][-1] == "cancelled by alice"
    cited = json.loads(runner.invoke(app, ["--db", client.url, "explain", str(run_id), "--json", "--cite"]).stdout)
    assert cited["b"][-1]["events"][0]["action"] == "run.cancelled"


@pytest.mark.slow
def test_a_task_a_server_denied_for_a_missing_privilege_is_explained(db_url: str) -> None:
    with actorbatch.connect(db_url) as admin:
        admin.grant(admin.user, ["admin"])
        admin.grant("alice", ["job.manage", "job.run"])
    with actorbatch.connect(db_url, user="alice") as alice, \
            actorbatch.Server(alice, name="guard", threads=1, lease_timeout_s=5):
        alice.add_job(parse_job({"name": "post", "tasks": [{"name": "t", "run": "actorbatch.examples:noop",
                                                            "privileges": ["invoice.post"]}]}))
        run_id = alice.wait(alice.run_job("post"), timeout=60)["id"]
        assert _cited(alice, run_id, "t")[-1] == (
            "failed without running: the run acts as alice, who lacks the privilege invoice.post; grant it "
            "(`actorbatch user grant alice invoice.post`) and retry the run", ["run v2 task.denied"])
