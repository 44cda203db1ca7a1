"""An embedded batch server: timeouts, retries, cancellation, groups, capacity windows, bounded logs."""

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

import actorbatch
from actorbatch.clock import ManualClock
from actorbatch.domain.jobfile import parse_job
from actorbatch.domain.servers import capacity, parse_window, zone
from actorbatch.errors import InvalidJob
from actorbatch.runners.context import MAX_LINES, RunLog


@pytest.fixture
def server(client: actorbatch.Client) -> Iterator[actorbatch.BatchServer]:
    with actorbatch.BatchServer(client.url, actorbatch.ServerConfig(name="s", threads=2, lease_timeout_s=5)) as s:
        yield s


def add(client: actorbatch.Client, **task: object) -> str:
    client.add_job(parse_job({"name": "j", "tasks": [{"name": "t", **task}]}), replace=True)
    return "j"


def only_task(detail: dict[str, object]) -> dict[str, object]:
    tasks = detail["tasks"]
    assert isinstance(tasks, list)
    return tasks[0]  # type: ignore[no-any-return]


def test_a_python_task_over_its_timeout_fails_and_holds_its_thread_until_it_returns(
        client: actorbatch.Client, server: actorbatch.BatchServer) -> None:
    add(client, run="tests.bodies:stubborn", params={"seconds": 1.5}, timeout="0.3s")
    started = time.monotonic()
    detail = client.wait(client.run_job("j"), timeout=30)
    assert time.monotonic() - started < 1.4  # reported at the timeout, not when the body returned
    assert only_task(detail)["exit_status"] == "timeout after 0.3s"
    assert server.busy() == 1  # the body still runs: its thread is not free
    deadline = time.monotonic() + 10
    while server.busy() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.busy() == 0
    assert client.run(detail["id"])["tasks"][0]["history"][0].get("late_result") is None  # no second outcome


def test_a_shell_task_over_its_timeout_is_killed(client: actorbatch.Client, server: actorbatch.BatchServer) -> None:
    add(client, command=["sleep", "30"], timeout="0.5s")
    started = time.monotonic()
    detail = client.wait(client.run_job("j"), timeout=30)
    assert time.monotonic() - started < 10
    assert only_task(detail)["exit_status"] == "timeout after 0.5s"
    assert detail["status"] == "failed"


def test_a_failing_task_is_retried_until_it_succeeds(client: actorbatch.Client,
                                                    server: actorbatch.BatchServer) -> None:
    add(client, run="tests.bodies:flaky", params={"succeed_on": 3}, retries=3, retry_delay="0.1s")
    detail = client.wait(client.run_job("j"), timeout=30)
    task = only_task(detail)
    assert (detail["status"], task["attempts"]) == ("succeeded", 3)
    outcomes = [h["outcome"] for h in task["history"]]  # type: ignore[index]
    assert outcomes == ["RuntimeError: attempt 1 fails", "RuntimeError: attempt 2 fails", "succeeded"]


def test_a_run_later_starts_when_due_not_before(client: actorbatch.Client, server: actorbatch.BatchServer) -> None:
    add(client, run="actorbatch.examples:noop")
    due = datetime.now(UTC) + timedelta(seconds=1)
    run_id = client.run_job("j", at=due)
    assert client.run(run_id)["status"] == "scheduled"
    detail = client.wait(run_id, timeout=30)
    started = datetime.fromisoformat(only_task(detail)["started_at"].replace("Z", "+00:00"))  # type: ignore[union-attr]
    assert due <= started < due + timedelta(seconds=1)


def test_a_server_runs_only_the_groups_it_serves(client: actorbatch.Client) -> None:
    client.add_job(parse_job({"name": "report", "group": "reports", "tasks": [
        {"name": "t", "run": "actorbatch.examples:noop"}]}))
    run_id = client.run_job("report")
    config = actorbatch.ServerConfig(name="other", groups=("default",), threads=1, lease_timeout_s=5)
    with actorbatch.BatchServer(client.url, config), pytest.raises(TimeoutError):
        client.wait(run_id, timeout=1)
    config = actorbatch.ServerConfig(name="reporter", groups=("reports",), threads=1, lease_timeout_s=5)
    with actorbatch.BatchServer(client.url, config):
        assert client.wait(run_id, timeout=30)["status"] == "succeeded"


def test_cancel_reaches_a_running_python_body(client: actorbatch.Client, server: actorbatch.BatchServer) -> None:
    add(client, run="actorbatch.examples:sleep", params={"seconds": 30})
    run_id = client.run_job("j")
    deadline = time.monotonic() + 10
    while only_task(client.run(run_id))["status"] != "running" and time.monotonic() < deadline:
        time.sleep(0.02)
    client.cancel(run_id)
    detail = client.wait(run_id, timeout=30)
    assert detail["status"] == "cancelled"
    deadline = time.monotonic() + 5
    while server.busy() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.busy() == 0  # the body saw cancelled() and returned


def test_the_run_log_is_bounded_per_attempt(client: actorbatch.Client, server: actorbatch.BatchServer) -> None:
    add(client, run="tests.bodies:chatty", params={"lines": MAX_LINES + 25})
    run_id = client.wait(client.run_job("j"), timeout=60)["id"]
    lines = [line for *_, line in client.logs(run_id)]
    assert len(lines) == MAX_LINES + 1
    assert lines[-1] == f"[25 more lines dropped: the run log keeps {MAX_LINES} per attempt]"


def test_run_log_take_ships_each_line_once() -> None:
    clock = ManualClock(datetime(2026, 11, 2, tzinfo=UTC))
    log = RunLog(clock.now)
    log.write("a")
    assert log.take() == (("a",), (clock.now(),))
    clock.advance(1.5)
    log.write("b")
    assert log.take(final=True) == (("b",), (clock.now(),))
    assert log.take(final=True) == ((), ())


@pytest.mark.parametrize(("spec", "when", "threads"), [
    ("mon-fri 08:00-18:00=2", "2026-11-23T09:00", 2),   # a Monday, inside
    ("mon-fri 08:00-18:00=2", "2026-11-23T18:00", 8),   # end is exclusive
    ("mon-fri 08:00-18:00=2", "2026-11-22T09:00", 8),   # a Sunday
    ("fri 22:00-06:00=16", "2026-11-28T03:00", 16),     # Saturday 03:00 belongs to Friday's night window
    ("fri 22:00-06:00=16", "2026-11-27T03:00", 8),      # Friday 03:00 belongs to Thursday's, not listed
    ("sat-mon 00:00-23:59=1", "2026-11-23T12:00", 1),   # ranges wrap around the week
])
def test_capacity_windows(spec: str, when: str, threads: int) -> None:
    berlin = zone("Europe/Berlin")
    local = datetime.fromisoformat(when).replace(tzinfo=berlin)
    assert capacity(8, [parse_window(spec)], berlin, local.astimezone(UTC)) == threads


@pytest.mark.parametrize("spec", ["weekdays 08:00-18:00=2", "mon 8-18=2", "mon 08:00-18:00", "mon 25:00-26:00=1"])
def test_bad_windows_are_refused(spec: str) -> None:
    with pytest.raises(InvalidJob, match="--window"):
        parse_window(spec)
