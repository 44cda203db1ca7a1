"""Running again: `run retry` re-executes only what did not succeed, `job backfill` fills past fire times once,
`job run --key` submits once however often it is repeated. Through the Python API and the command line."""

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
from typer.testing import CliRunner, Result

import actorbatch
from actorbatch.cli.app import app
from actorbatch.domain.events import job_id
from actorbatch.domain.jobfile import parse_job
from actorbatch.domain.runs import scheduled_run_id

runner = CliRunner()


def cli(url: str, *args: str) -> Result:
    return runner.invoke(app, ["--db", url, *args])


@pytest.fixture
def server(client: actorbatch.Client) -> Iterator[actorbatch.BatchServer]:
    with actorbatch.BatchServer(client.url, actorbatch.ServerConfig(name="s", threads=2, lease_timeout_s=5)) as s:
        yield s


def counts(folder: Path) -> dict[str, int]:
    return {p.stem: len(p.read_text().splitlines()) for p in sorted(folder.glob("*.count"))}


def add_chain(client: actorbatch.Client, folder: Path) -> None:
    """a -> b -> c -> e, and d alone; b fails while b.fail exists."""
    task = {"run": "tests.bodies:counted", "params": {"dir": str(folder)}}
    client.add_job(parse_job({"name": "chain", "tasks": [
        {"name": "a", **task}, {"name": "b", **task, "after": {"a": "succeeded"}},
        {"name": "c", **task, "after": {"b": "succeeded"}}, {"name": "d", **task},
        {"name": "e", **task, "after": {"c": "succeeded"}}]}))


def test_retry_runs_only_what_did_not_succeed_and_links_both_runs(
        client: actorbatch.Client, server: actorbatch.BatchServer, tmp_path: Path) -> None:
    add_chain(client, tmp_path)
    (tmp_path / "b.fail").touch()
    first = client.wait(client.run_job("chain", params={"region": "EU"}), timeout=30)
    assert first["status"] == "failed"
    assert counts(tmp_path) == {"a": 1, "b": 1, "d": 1}
    (tmp_path / "b.fail").unlink()

    second_id = client.retry(first["id"])
    second = client.wait(second_id, timeout=30)
    assert second["status"] == "succeeded"
    assert counts(tmp_path) == {"a": 1, "b": 2, "c": 1, "d": 1, "e": 1}  # a and d kept: not run again
    tasks = {t["name"]: t for t in second["tasks"]}
    assert (tasks["a"]["attempts"], tasks["a"]["result"]) == (0, "a done")  # kept, with its result
    assert (tasks["b"]["attempts"], tasks["b"]["result"]) == (1, "b done")
    assert second["params"] == {"region": "EU"}
    assert second["retry_of"] == first["id"]
    assert client.run(first["id"])["retried_by"] == [str(second_id)]

    third = client.wait(client.retry(second_id, everything=True), timeout=30)
    assert third["status"] == "succeeded"
    assert counts(tmp_path) == {"a": 2, "b": 3, "c": 2, "d": 2, "e": 2}  # --all: everything again
    with pytest.raises(actorbatch.ActorbatchError, match="nothing to retry"):
        client.retry(third["id"])
    assert counts(tmp_path) == {"a": 2, "b": 3, "c": 2, "d": 2, "e": 2}


def test_a_task_downstream_of_one_that_runs_again_runs_again(
        client: actorbatch.Client, server: actorbatch.BatchServer, tmp_path: Path) -> None:
    task = {"run": "tests.bodies:counted", "params": {"dir": str(tmp_path)}}
    client.add_job(parse_job({"name": "branch", "tasks": [
        {"name": "a", **task}, {"name": "on-fail", **task, "after": {"a": "failed"}},
        {"name": "on-ok", **task, "after": {"a": "succeeded"}}]}))
    (tmp_path / "a.fail").touch()
    first = client.wait(client.run_job("branch"), timeout=30)
    (tmp_path / "a.fail").unlink()
    second = client.wait(client.retry(first["id"]), timeout=30)
    statuses = {t["name"]: t["status"] for t in second["tasks"]}
    assert statuses == {"a": "succeeded", "on-fail": "skipped", "on-ok": "succeeded"}
    assert counts(tmp_path) == {"a": 2, "on-fail": 1, "on-ok": 1}


def test_run_retry_on_the_command_line(client: actorbatch.Client, server: actorbatch.BatchServer,
                                       tmp_path: Path) -> None:
    add_chain(client, tmp_path)
    (tmp_path / "c.fail").touch()
    first = str(client.wait(client.run_job("chain"), timeout=30)["id"])
    (tmp_path / "c.fail").unlink()
    result = cli(client.url, "run", "retry", first.replace("-", "")[:10])
    assert result.exit_code == 0, result.output
    second = result.stdout.strip()
    assert client.wait(second, timeout=30)["status"] == "succeeded"
    assert counts(tmp_path) == {"a": 1, "b": 1, "c": 2, "d": 1, "e": 1}
    shown = cli(client.url, "run", "show", first).stdout
    assert f"retried as run {second}" in shown
    assert f"retry of run {first}" in cli(client.url, "run", "show", second).stdout
    document = json.loads(cli(client.url, "run", "show", second, "--json").stdout)
    assert document["retry_of"] == first
    assert {t["name"]: t["result"] for t in document["tasks"]}["c"] == "c done"


def test_retry_of_a_run_still_running_is_refused(client: actorbatch.Client, tmp_path: Path) -> None:
    add_chain(client, tmp_path)
    run_id = client.run_job("chain")
    result = cli(client.url, "run", "retry", str(run_id))
    assert result.exit_code == 1
    assert "is still running" in result.stderr
    assert len(client.runs()) == 1


DAILY = {"name": "nightly", "schedule": {"daily": "02:00"},
         "tasks": [{"name": "t", "run": "actorbatch.examples:noop"}]}


def test_backfill_makes_one_run_per_fire_time_once(client: actorbatch.Client) -> None:
    client.add_job(parse_job(DAILY))
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start, end = today - timedelta(days=6), today - timedelta(days=1)
    assert [b["created"] for b in client.backfill("nightly", start, end, dry_run=True)] == [True] * 5
    assert client.runs(job="nightly") == []  # a dry run creates nothing
    first = client.backfill("nightly", start, end)
    fires = [start + timedelta(days=i, hours=2) for i in range(5)]
    assert [b["fire_time"] for b in first] == [f.strftime("%Y-%m-%dT%H:%M:%SZ") for f in fires]
    assert [b["run_id"] for b in first] == [str(scheduled_run_id(job_id("nightly"), f)) for f in fires]
    assert all(b["created"] for b in first)
    again = client.backfill("nightly", start - timedelta(days=1), end)
    assert [b["created"] for b in again] == [True, False, False, False, False, False]  # only the new day
    assert len(client.runs(job="nightly")) == 6


def test_backfill_on_the_command_line(client: actorbatch.Client) -> None:
    client.add_job(parse_job(DAILY))
    today = datetime.now(UTC).date()
    start, end = (today - timedelta(days=5)).isoformat(), today.isoformat()
    result = cli(client.url, "job", "backfill", "nightly", "--from", start, "--to", end, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert len(document) == 5
    assert all(set(row) == {"fire_time", "run_id", "created"} and row["created"] for row in document)
    again = json.loads(cli(client.url, "job", "backfill", "nightly", "--from", start, "--to", end, "--json").stdout)
    assert [row["created"] for row in again] == [False] * 5
    assert [row["run_id"] for row in again] == [row["run_id"] for row in document]
    assert len(client.runs(job="nightly")) == 5
    for bad in (["--from", end, "--to", start], ["--from", start, "--to", "2999-01-01"],
                ["--from", "yesterday", "--to", end]):
        refused = cli(client.url, "job", "backfill", "nightly", *bad)
        assert refused.exit_code == 2, (bad, refused.output)
    client.add_job(parse_job({"name": "adhoc", "tasks": [{"name": "t", "run": "actorbatch.examples:noop"}]}))
    refused = cli(client.url, "job", "backfill", "adhoc", "--from", start, "--to", end)
    assert refused.exit_code == 1
    assert "has no [schedule]" in refused.stderr


def test_a_repeated_key_returns_the_first_run(client: actorbatch.Client) -> None:
    client.add_job(parse_job(DAILY))
    first = client.run_job("nightly", params={"n": 1}, key="invoice-2026-12")
    assert client.run_job("nightly", params={"n": 2}, key="invoice-2026-12") == first
    assert client.run_job("nightly", key="invoice-2027-01") != first
    assert len(client.runs()) == 2
    result = cli(client.url, "job", "run", "nightly", "--key", "invoice-2026-12")
    assert (result.exit_code, result.stdout.strip()) == (0, str(first))
    other = cli(client.url, "job", "run", "nightly", "--key", "cli-key").stdout.strip()
    assert cli(client.url, "job", "run", "nightly", "--key", "cli-key").stdout.strip() == other
    assert len(client.runs()) == 3
    assert UUID(other) != first
    assert client.run(first)["params"] == {"n": 1}


@pytest.mark.postgres
def test_retry_backfill_key_and_the_status_counts_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    with actorbatch.connect(pg_url, user="pg") as client:
        add_chain(client, tmp_path)
        client.add_job(parse_job(DAILY))
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        assert sum(b["created"] for b in client.backfill("nightly", today - timedelta(days=5), today)) == 5
        assert sum(b["created"] for b in client.backfill("nightly", today - timedelta(days=5), today)) == 0
        assert client.run_job("chain", key="k") == client.run_job("chain", key="k")
        tally = client.status(rows=2)["counts"]
        assert (tally["active_runs"], tally["queued_runs"], tally["started_runs"]) == (6, 6, 0)
        (tmp_path / "b.fail").touch()
        with actorbatch.BatchServer(pg_url, actorbatch.ServerConfig(name="pg1", threads=2, lease_timeout_s=5)):
            first = client.wait(client.run_job("chain"), timeout=60)
            (tmp_path / "b.fail").unlink()
            second = client.wait(client.retry(first["id"]), timeout=60)
        assert second["status"] == "succeeded" and second["retry_of"] == first["id"]
        assert counts(tmp_path)["a"] == 2  # the keyed run's and the first run's; the retry kept it


def test_racing_submits_with_one_key_make_one_run(client: actorbatch.Client) -> None:
    from concurrent.futures import ThreadPoolExecutor

    client.add_job(parse_job(DAILY))

    def submit(_: int) -> UUID:
        with actorbatch.connect(client.url, user="racer") as own:
            return own.run_job("nightly", key="once")

    with ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(submit, range(16)))
    assert len(ids) == 1
    assert [r["id"] for r in client.runs(job="nightly")] == [str(ids.pop())]
