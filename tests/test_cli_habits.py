"""The command line fits the habits of the people who use it: help on everything with readable names, a version,
completion, exit 2 for a bad option value, years on dates that are not today, a status screen that stays one
screen under load, idempotent schedule changes, complete `job show`, and `job remove` that minds pending runs."""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import typer
from typer.testing import CliRunner, Result

import actorbatch
from actorbatch.cli.app import app
from actorbatch.domain.jobfile import parse_job

runner = CliRunner()
NOOP = {"name": "t", "run": "actorbatch.examples:noop"}


def cli(url: str, *args: str) -> Result:
    return runner.invoke(app, ["--db", url, *args])


def commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from commands(sub, (*path, name))


def test_every_option_and_argument_has_help_and_a_readable_name() -> None:
    root = typer.main.get_command(app)
    for path, command in commands(root):
        for param in command.params:
            assert param.help, f"{' '.join(path)}: {param.name} has no help"
        shown = runner.invoke(app, [*path, "--help"], terminal_width=200)
        assert shown.exit_code == 0, path
        assert "<bool>" not in shown.stdout, (path, shown.stdout)
        usage = shown.stdout.strip().splitlines()[0]
        assert "{" not in usage and usage == usage.replace("_id", "").replace("run_", ""), (path, usage)


def test_version_and_completion() -> None:
    from importlib.metadata import version

    shown = runner.invoke(app, ["--version"])
    assert (shown.exit_code, shown.stdout) == (0, f"actorbatch {version('actorbatch')}\n")
    assert "--install-completion" in runner.invoke(app, ["--help"]).stdout


@pytest.mark.parametrize("args", [
    ["job", "run", "j", "--at", "tomorrow"], ["job", "run", "j", "--param", "noequals"],
    ["job", "next", "j", "--from", "soon"], ["run", "list", "--since", "yesterday"],
    ["job", "backfill", "j", "--from", "2026-11-02", "--to", "2026-11-01"],
    ["server", "start", "--timezone", "Mars/Olympus"], ["server", "start", "--window", "weekends=2"],
    ["server", "start", "--threads", "0"], ["status", "--rows", "0"],
])
def test_a_bad_option_value_exits_2_with_one_line(client: actorbatch.Client, args: list[str]) -> None:
    client.add_job(parse_job({"name": "j", "schedule": {"daily": "02:00"}, "tasks": [NOOP]}))
    result = cli(client.url, *args)
    assert result.exit_code == 2, (args, result.output)
    assert len(result.stderr.strip().splitlines()) == 1 or "Usage:" in result.stderr, result.stderr


def test_a_run_later_in_the_past_says_it_runs_now_and_dates_show_their_year(client: actorbatch.Client) -> None:
    client.add_job(parse_job({"name": "j", "tasks": [NOOP]}))
    past = cli(client.url, "job", "run", "j", "--at", "2020-01-01T00:00:00")
    assert past.exit_code == 0
    assert "is not in the future" in past.stderr and "due now" in past.stderr
    assert client.run(past.stdout.strip())["status"] == "running"
    cli(client.url, "job", "run", "j", "--at", "2099-12-01T02:00:00")
    listing = cli(client.url, "run", "list").stdout
    assert "2099-12-01 02:00:00" in listing  # not today: with its year
    assert "2020-01-01 00:00:00" in listing


def test_run_id_prefixes_with_or_without_dashes(client: actorbatch.Client) -> None:
    client.add_job(parse_job({"name": "j", "tasks": [NOOP]}))
    run_id = str(client.run_job("j"))
    for ref in (run_id[:4], run_id[:13], run_id.replace("-", "")[:20], run_id.replace("-", ""), run_id.upper()):
        shown = cli(client.url, "run", "show", ref, "--json")
        assert shown.exit_code == 0, (ref, shown.output)
        assert json.loads(shown.stdout)["id"] == run_id


def test_the_status_screen_stays_one_screen_with_3000_queued_runs(client: actorbatch.Client) -> None:
    client.add_job(parse_job({"name": "j", "tasks": [NOOP]}))
    client.run_many("j", [{"n": i} for i in range(3000)])
    screen = cli(client.url, "status")
    assert screen.exit_code == 0
    lines = screen.stdout.splitlines()
    assert len(lines) <= 40, screen.stdout
    assert "3,000 active runs (0 started, 3,000 queued, 0 due later)" in lines[0]
    assert "10 of 3,000 shown" in screen.stdout
    document = json.loads(cli(client.url, "status", "--json").stdout)
    assert document["counts"]["active_runs"] == 3000
    assert len(document["runs"]) == 10


@pytest.mark.slow
def test_status_watch_json_writes_json_lines(db_url: str) -> None:
    env = {**os.environ, "ACTORBATCH_DB": db_url}
    with subprocess.Popen([sys.executable, "-m", "actorbatch", "status", "--watch", "--json"], env=env,
                          stdout=subprocess.PIPE, text=True) as watching:
        assert watching.stdout is not None
        try:
            documents = [json.loads(watching.stdout.readline()) for _ in range(2)]
        finally:
            watching.terminate()
    assert [set(d) >= {"at", "counts", "jobs", "runs", "servers"} for d in documents] == [True, True]
    assert documents[0]["at"] < documents[1]["at"]


def test_schedule_and_unschedule_twice_are_no_ops(client: actorbatch.Client) -> None:
    client.add_job(parse_job({"name": "j", "schedule": {"daily": "02:00"}, "tasks": [NOOP]}))
    events = len(client.store.events(client.commands.job("j").id))  # type: ignore[arg-type]
    again = cli(client.url, "job", "schedule", "j")
    assert (again.exit_code, again.stdout.startswith("job j is already scheduled")) == (0, True)
    assert cli(client.url, "job", "unschedule", "j").exit_code == 0
    twice = cli(client.url, "job", "unschedule", "j")
    assert (twice.exit_code, twice.stdout.strip()) == (0, "job j is not scheduled (nothing to do)")
    assert len(client.store.events(client.commands.job("j").id)) == events + 1  # type: ignore[arg-type]


def test_job_show_has_the_schedule_in_words_next_fires_and_every_task_setting(client: actorbatch.Client) -> None:
    client.add_job(parse_job({
        "name": "j", "description": "Nightly export", "schedule": {"daily": "02:00", "timezone": "Europe/Berlin"},
        "tasks": [{"name": "export", "command": ["sh", "-c", "echo 'a b' > out.txt"], "timeout": "10m",
                   "retries": 2, "retry_delay": "30s"},
                  {"name": "report", **{k: v for k, v in NOOP.items() if k != "name"}, "params": {"x": 1},
                   "after": {"export": "succeeded"}}]}))
    shown = runner.invoke(app, ["--db", client.url, "job", "show", "j"], terminal_width=250).stdout
    assert "job j: Nightly export" in shown
    assert "schedule: daily at 02:00 (Europe/Berlin)" in shown and "missed fire times: run-once" in shown
    fires = client.next_fires("j", 3)
    assert "next fires: " + ", ".join(f"{f['utc']} ({f['local']})" for f in fires) in shown
    assert "sh -c 'echo '\"'\"'a b'\"'\"' > out.txt'" in shown  # quoted as a shell takes it
    for setting in ("10 minutes", "30 seconds", "export=succeeded", '{"x": 1}'):
        assert setting in shown, setting


def test_job_remove_refuses_pending_runs_unless_forced_which_cancels_them(client: actorbatch.Client) -> None:
    client.add_job(parse_job({"name": "gone", "tasks": [NOOP]}))
    later = client.run_job("gone", at=datetime.now(UTC) + timedelta(hours=1))
    now = client.run_job("gone")
    refused = cli(client.url, "job", "remove", "gone")
    assert refused.exit_code == 1
    assert "has 2 pending runs" in refused.stderr and "--force" in refused.stderr
    assert client.job("gone")["name"] == "gone"  # nothing written
    forced = cli(client.url, "job", "remove", "gone", "--force")
    assert (forced.exit_code, forced.stdout.strip()) == (0, "removed job gone; cancelled its 2 pending runs")
    assert {client.run(r)["status"] for r in (later, now)} == {"cancelled"}
    assert cli(client.url, "job", "show", "gone").exit_code == 1
