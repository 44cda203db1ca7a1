"""A bad event stops one aggregate, never the system: corrupt or unfoldable events are quarantined, named, and put
to rest by ordinary commands; a rebuild never loses the read models it replaces."""

import json
import logging
import sqlite3
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest
from typer.testing import CliRunner, Result

import actorbatch
from actorbatch.cli.app import app
from actorbatch.domain.events import job_id
from actorbatch.domain.jobfile import parse_job
from actorbatch.domain.runs import Run, RunCreated
from actorbatch.store.urls import parse_url

runner = CliRunner()
NOOP = "actorbatch.examples:noop"


def cli(url: str, *args: str) -> Result:
    return runner.invoke(app, ["--db", url, "--user", "tester", *args])


def listing(url: str, *args: str) -> Any:
    result = cli(url, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def add(client: actorbatch.Client, name: str, tasks: int = 1) -> None:
    client.add_job(parse_job({"name": name, "tasks": [{"name": f"t{i}", "run": NOOP} for i in range(tasks)]}))


def claimed_run(client: actorbatch.Client, job: str) -> UUID:
    """A run of `job` whose first task a (gone) server claimed: versions 1 (created) and 2 (task.claimed)."""
    run_id = client.run_job(job)
    run = client.store.load(Run, run_id)
    assert run is not None
    client.store.append(run.claim("t0", "ghost", client.clock.now(), 30))
    return run_id


def overwrite(url: str, aggregate: UUID, version: int) -> None:
    """Four bytes of one stored event overwritten, as a disk or a careless hand might."""
    table = "stored_events" if url.startswith("sqlite") else "actorbatch_events"
    if url.startswith("sqlite"):
        with sqlite3.connect(parse_url(url).path) as conn:
            conn.execute(f"UPDATE {table} SET state = CAST(x'c1c1c1c1' || substr(state, 5) AS BLOB) "
                         "WHERE originator_id = ? AND originator_version = ?", (aggregate.hex, version))
            assert conn.total_changes == 1
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        changed = conn.execute(f"UPDATE {table} SET state = '\\xc1c1c1c1'::bytea || substr(state, 5) "
                               "WHERE originator_id = %s AND originator_version = %s", (aggregate, version))
        assert changed.rowcount == 1


def problem_lines(url: str) -> list[str]:
    return [p["line"] for p in listing(url, "status")["problems"]]


def test_a_corrupt_event_stops_its_run_and_nothing_else(db_url: str, client: actorbatch.Client,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    add(client, "good")
    add(client, "poisoned", tasks=2)
    poisoned = claimed_run(client, "poisoned")
    overwrite(db_url, poisoned, 2)
    line = f"run {poisoned} v2 quarantined: corrupt event (task.claimed): "
    for command in (["job", "list"], ["run", "list"], ["server", "list"], ["audit", "log"],
                    ["run", "show", str(poisoned)]):
        result = cli(db_url, *command)
        assert result.exit_code == 0, result.output
        assert f"warning: {line}" in result.stderr
    assert [p.startswith(line) for p in problem_lines(db_url)] == [True]
    assert line in cli(db_url, "status").stdout
    verified = cli(db_url, "audit", "verify")
    assert verified.exit_code == 1 and f"error: {line}" in verified.stderr
    before = [listing(db_url, "job", "list"), listing(db_url, "run", "list")]
    rebuilt = cli(db_url, "projections", "rebuild")
    assert rebuilt.exit_code == 0 and line in rebuilt.stderr
    assert [listing(db_url, "job", "list"), listing(db_url, "run", "list")] == before
    assert listing(db_url, "run", "show", str(poisoned))["tasks"][0]["status"] == "ready"  # as of v1

    caplog.set_level(logging.WARNING, logger="actorbatch.server")
    config = actorbatch.ServerConfig(name="fresh", threads=2, lease_timeout_s=5, projector="thread")
    with actorbatch.BatchServer(db_url, config):
        good = client.run_job("good")
        assert client.wait(good, timeout=30)["status"] == "succeeded"
        assert [t["status"] for t in client.run(poisoned)["tasks"]] == ["ready", "ready"]  # never claimed
    named = [r.getMessage() for r in caplog.records if str(poisoned) in r.getMessage()]
    assert named == [f"server fresh: {problem_lines(db_url)[0]}"]  # once, however many polls met it
    assert [e.originator_version for e in client.store.events(poisoned)] == [1, 2]

    assert cli(db_url, "run", "cancel", str(poisoned)[:8]).exit_code == 0
    assert problem_lines(db_url) == []
    assert listing(db_url, "run", "show", str(poisoned))["status"] == "cancelled"
    verified = cli(db_url, "audit", "verify")
    assert verified.exit_code == 0 and "put to rest by run.cancelled by tester (v3)" in verified.stderr
    assert listing(db_url, "audit", "log")[-1]["action"] == "run.cancelled"


def test_an_event_no_fold_can_apply_is_quarantined_and_put_to_rest(db_url: str, client: actorbatch.Client) -> None:
    add(client, "broken")
    job = client.store.load(actorbatch.domain.jobs.JobState, job_id("broken"))
    assert job is not None and job.definition is not None
    definition = job.definition.to_dict()
    definition["tasks"][0]["after"] = (("zzz", "succeeded"),)  # as an older release let the Python API write
    run_id = UUID(int=7)
    client.store.append(RunCreated(originator_id=run_id, originator_version=1, timestamp=client.clock.now(),
                                   definition=definition, job_version=1, params={}, user="tester",
                                   due_at=client.clock.now(), fire_time=None))
    [problem] = client.problems()
    assert problem.line.startswith(f"run {run_id} v1 quarantined: cannot fold event (run.created): KeyError: 'zzz'")
    assert listing(db_url, "run", "list") == []
    shown = cli(db_url, "run", "show", str(run_id))
    assert shown.exit_code == 1 and "cannot fold event (run.created)" in shown.stderr
    assert cli(db_url, "run", "cancel", str(run_id)).exit_code == 0
    assert client.problems() == [] and client.problems(rested=True)[0].rested == 2

    overwrite(db_url, job_id("broken"), 1)
    assert cli(db_url, "job", "run", "broken").exit_code == 1
    assert cli(db_url, "job", "remove", "broken").exit_code == 0
    assert listing(db_url, "job", "list") == [] and client.problems() == []
    add(client, "broken")  # the name is free again
    assert [j["name"] for j in listing(db_url, "job", "list")] == ["broken"]


def test_a_time_no_read_model_can_show_quarantines_only_its_run(db_url: str, client: actorbatch.Client) -> None:
    add(client, "j")
    early = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))  # before year 1 in UTC
    job = client.store.load(actorbatch.domain.jobs.JobState, job_id("j"))
    assert job is not None and job.definition is not None
    bad = Run.create(UUID(int=9), job.definition, 1, {}, "tester", early, client.clock.now())
    client.store.append(bad)
    good = client.run_job("j")
    assert [r["id"] for r in listing(db_url, "run", "list")] == [str(good)]
    assert [p.line.split(":")[0:2] for p in client.problems()] == [
        [f"run {bad.originator_id} v1 quarantined", " cannot be written to the read models"]]


def test_a_failed_rebuild_leaves_the_old_read_models(db_url: str, client: actorbatch.Client) -> None:
    add(client, "a")
    add(client, "b")
    client.run_job("a")
    overwrite(db_url, client.run_job("b"), 1)
    before = (client.jobs(), client.runs(), client.problems())
    with actorbatch.connect(db_url, user="other") as other:

        def interrupted(done: int, total: int) -> None:
            assert (other.jobs(), other.runs(), other.problems()) == before  # others read the old ones meanwhile
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            client.rebuild_projections(interrupted)
    assert (client.jobs(), client.runs(), client.problems()) == before
    client.rebuild_projections()
    assert (client.jobs(), client.runs(), client.problems()) == before


def test_a_store_without_the_problems_table_still_opens(db_url: str) -> None:
    with sqlite3.connect(parse_url(db_url).path) as conn:
        conn.execute("DROP TABLE ab_problems")  # as the previous release made it
    assert listing(db_url, "status")["problems"] == []


@pytest.mark.postgres
def test_a_corrupt_event_on_postgresql(pg_url: str) -> None:
    with actorbatch.connect(pg_url, user="tester") as client:
        add(client, "good")
        add(client, "poisoned", tasks=2)
        poisoned = claimed_run(client, "poisoned")
        overwrite(pg_url, poisoned, 2)
        line = f"run {poisoned} v2 quarantined: corrupt event (task.claimed): "
        assert [p.startswith(line) for p in problem_lines(pg_url)] == [True]
        before = [listing(pg_url, "job", "list"), listing(pg_url, "run", "list")]
        assert cli(pg_url, "projections", "rebuild").exit_code == 0
        assert [listing(pg_url, "job", "list"), listing(pg_url, "run", "list")] == before
        assert cli(pg_url, "run", "cancel", str(poisoned)).exit_code == 0
        assert problem_lines(pg_url) == []
        assert client.run(poisoned)["status"] == "cancelled"
