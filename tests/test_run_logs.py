"""The run log holds everything an attempt says: print, stderr, logging records, the traceback of a failing body,
and a shell command's output, each line timestamped; attempts running side by side keep their lines apart."""

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

import actorbatch
from actorbatch.cli.app import app
from actorbatch.domain.jobfile import parse_job

runner = CliRunner()


@pytest.fixture
def server(client: actorbatch.Client) -> Iterator[actorbatch.BatchServer]:
    with actorbatch.BatchServer(client.url, actorbatch.ServerConfig(name="s", threads=4, lease_timeout_s=5)) as s:
        yield s


def lines_of(client: actorbatch.Client, run_id: object, task: str) -> list[str]:
    return [line.line for line in client.logs(str(run_id), task)]


def test_print_stderr_logging_and_the_traceback_of_a_failing_body_reach_the_run_log(
        client: actorbatch.Client, server: actorbatch.BatchServer) -> None:
    client.add_job(parse_job({"name": "talk", "tasks": [
        {"name": "t", "run": "tests.bodies:talkative", "params": {"lines": 2, "raise": True}}]}))
    before = datetime.now(UTC)
    detail = client.wait(client.run_job("talk"), timeout=30)
    assert detail["tasks"][0]["exit_status"] == "ValueError: t gave up"
    lines = lines_of(client, detail["id"], "t")
    for i in range(2):
        assert f"t printed {i}" in lines
        assert f"stderr: t stderr {i}" in lines
        assert f"INFO tests.talkative: t logged {i}" in lines
    traceback = lines[lines.index("Traceback (most recent call last):"):]
    assert any("in talkative" in line for line in traceback)
    assert any("in _fail_deep" in line for line in traceback)
    assert traceback[-1] == "ValueError: t gave up"
    times = [line.at for line in client.logs(detail["id"])]
    assert all(t is not None and before - timedelta(seconds=1) <= t <= datetime.now(UTC) for t in times)
    assert times == sorted(times)  # type: ignore[type-var]


def test_attempts_running_side_by_side_keep_their_lines_apart(client: actorbatch.Client,
                                                              server: actorbatch.BatchServer) -> None:
    names = [f"t{i}" for i in range(4)]
    client.add_job(parse_job({"name": "many", "tasks": [
        {"name": name, "run": "tests.bodies:talkative", "params": {"lines": 40}} for name in names]}))
    detail = client.wait(client.run_job("many"), timeout=60)
    assert detail["status"] == "succeeded"
    starts = sorted(t["started_at"] for t in detail["tasks"])
    ends = sorted(t["ended_at"] for t in detail["tasks"])
    assert starts[-1] < ends[0]  # all four ran at the same time
    for name in names:
        lines = lines_of(client, detail["id"], name)
        assert len(lines) == 3 * 40
        assert all(line.removeprefix("stderr: ").removeprefix("INFO tests.talkative: ").startswith(f"{name} ")
                   for line in lines), lines


def test_a_body_that_prints_without_a_newline_still_gets_its_line(client: actorbatch.Client,
                                                                  server: actorbatch.BatchServer) -> None:
    client.add_job(parse_job({"name": "sh", "tasks": [
        {"name": "py", "run": "actorbatch.examples:echo", "params": {"x": 1}},
        {"name": "shell", "command": ["sh", "-c", "echo one; echo two >&2; printf three"]}]}))
    detail = client.wait(client.run_job("sh"), timeout=30)
    assert lines_of(client, detail["id"], "shell") == ["one", "two", "three"]
    assert all(line.at is not None for line in client.logs(detail["id"], "shell"))


def test_run_logs_on_the_command_line_with_times_and_as_json(client: actorbatch.Client,
                                                             server: actorbatch.BatchServer) -> None:
    client.add_job(parse_job({"name": "talk", "tasks": [
        {"name": "t", "run": "tests.bodies:talkative", "params": {"lines": 1, "raise": True}}]}))
    run_id = str(client.wait(client.run_job("talk"), timeout=30)["id"])
    text = runner.invoke(app, ["--db", client.url, "run", "logs", run_id])
    assert text.exit_code == 0, text.output
    first = text.stdout.splitlines()[0]
    clock, who, said = first.split(" ", 2)
    assert (who, said) == ("t#1", "t printed 0")
    assert datetime.strptime(clock, "%H:%M:%S.%f")  # today: the time alone
    document = json.loads(runner.invoke(app, ["--db", client.url, "run", "logs", run_id, "--json"]).stdout)
    assert document[0] == {"task": "t", "attempt": 1, "at": document[0]["at"], "line": "t printed 0"}
    assert document[-1]["line"] == "ValueError: t gave up"
    followed = runner.invoke(app, ["--db", client.url, "run", "logs", run_id, "--follow", "--json"])
    assert [json.loads(line) for line in followed.stdout.splitlines()] == document  # JSON lines


def test_a_process_without_stdout_still_captures_what_bodies_print() -> None:
    import subprocess
    import sys

    code = """
import sys
from actorbatch.clock import SystemClock
from actorbatch.runners.capture import capturing
from actorbatch.runners.context import RunLog, TaskLogger
sys.stdout = None
log = RunLog(SystemClock().now)
with capturing(TaskLogger(log)):
    print("into the run log")
print("nowhere, as before")
sys.stderr.write(repr(log.take()[0]))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60)
    assert (done.returncode, done.stderr) == (0, "('into the run log',)")
