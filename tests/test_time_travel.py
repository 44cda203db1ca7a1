"""Time travel: `status --as-of` and `run show --as-of` show exactly what the screens showed then, rebuilt from the
log (from a snapshot of the read models and the events after it), before and after a rebuild."""

import json
import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from typer.testing import CliRunner

import actorbatch
import actorbatch.cli.app
from actorbatch.clock import ManualClock
from actorbatch.domain.jobfile import parse_job
from actorbatch.domain.runs import Run
from actorbatch.domain.servers import Server
from actorbatch.projections import snapshots
from actorbatch.projections.past import SCRATCH
from actorbatch.projections.rows import codec, iso
from actorbatch.projections.views import Views
from actorbatch.store.sql import SqlDb

SEEN = list[tuple[datetime, dict[str, Any], dict[str, Any]]]  # (moment, status then, run show of the first run then)


def drive(client: actorbatch.Client, clock: ManualClock) -> tuple[UUID, SEEN]:
    """A day in the store's life, step by step, writing down what the screens showed after each step."""
    client.add_job(parse_job({"name": "pay", "tasks": [{"name": "a", "run": "m:f"},
                                                        {"name": "b", "run": "m:f", "after": {"a": "succeeded"},
                                                         "retries": 1, "retry_delay": "1m"}]}))
    first = client.run_job("pay")
    seen: SEEN = []

    def step(event: Callable[[Run], Any] | None = None) -> None:
        if event is not None:
            run = client.store.load(Run, first)
            assert run is not None
            client.store.append(event(run))
        seen.append((clock.now(), client.status(), client.run(first)))
        clock.advance(10)

    client.store.append(Server().start("s1", ("default",), 2, 30.0, "host", 1, clock.now()))
    step()
    step(lambda r: r.claim("a", "s1", clock.now(), 30))
    step(lambda r: r.finish("a", 1, clock.now(), exit_status=None, result=1))
    step(lambda r: r.claim("b", "s1", clock.now(), 30))
    step(lambda r: r.finish("b", 1, clock.now(), exit_status="exit 3"))  # retried in a minute
    second = client.run_job("pay", at=clock.now() + timedelta(hours=1))
    step()
    client.cancel(second)
    step()
    clock.advance(60)
    step(lambda r: r.claim("b", "s1", clock.now(), 30))
    step(lambda r: r.finish("b", 2, clock.now(), exit_status=None, result=2))
    return first, seen


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("db_url" if request.param == "sqlite" else "pg_url"))


@pytest.mark.parametrize("every", [2, 1000])  # from snapshots, and from the start of the log
def test_the_screens_as_of_each_past_moment_are_the_screens_of_that_moment(
        url: str, clock: ManualClock, monkeypatch: pytest.MonkeyPatch, every: int) -> None:
    monkeypatch.setattr(snapshots, "SNAPSHOT_EVERY", every)
    with actorbatch.connect(url, user="alice", clock=clock) as client:
        first, seen = drive(client, clock)
        assert seen[1][1]["runs"][0]["status"] == "running" and seen[-1][2]["status"] == "succeeded"
        for rebuilt in (False, True):
            if rebuilt:
                client.rebuild_projections()
            for moment, status, run in seen:
                assert client.status(as_of=moment) == status, (rebuilt, moment)
                assert client.run(first, as_of=moment) == run, (rebuilt, moment)
        taken = client.views.db.query("SELECT COUNT(*) FROM ab_snapshots")[0][0]
        assert (taken > 0) == (every == 2)


def test_before_the_first_event_there_was_nothing(client: actorbatch.Client) -> None:
    client.add_job(parse_job({"name": "j", "tasks": [{"name": "t", "run": "m:f"}]}))
    run_id = client.run_job("j")
    before = datetime(2000, 1, 1, tzinfo=UTC)
    assert client.status(as_of=before)["jobs"] == [] and client.status(as_of=before)["runs"] == []
    with pytest.raises(actorbatch.NotFound, match=f"run {run_id} did not exist yet at 2000-01-01T00:00:00"):
        client.run(run_id, as_of=before)


@pytest.mark.slow
def test_status_as_of_mid_run_still_shows_it_running_after_it_completed(db_url: str) -> None:
    runner = CliRunner()

    def cli(*args: str) -> Any:
        result = runner.invoke(actorbatch.cli.app.app, ["--db", db_url, *args])
        assert result.exit_code == 0, (args, result.stdout, result.stderr)
        return json.loads(result.stdout)

    with actorbatch.connect(db_url, user="alice") as client:
        client.add_job(parse_job({"name": "nap", "tasks": [{"name": "zz", "run": "actorbatch.examples:sleep",
                                                             "params": {"seconds": 1.5}}]}))
        run_id = client.run_job("nap")
        with actorbatch.Server(client, name="s1", threads=1):
            while client.run(run_id)["tasks"][0]["status"] != "running":
                time.sleep(0.05)
            mid = iso(datetime.now(UTC))
            client.wait(run_id, timeout=30)
        assert client.run(run_id)["status"] == "succeeded"
    for _ in range(2):  # the past stays the past
        then = cli("status", "--as-of", mid, "--json")
        assert then["at"] == mid
        assert [(r["id"], r["status"]) for r in then["runs"]] == [(str(run_id), "running")]
        assert [(t["task"], t["server"]) for t in then["running_tasks"]] == [("zz", "s1")]
        assert [s["name"] for s in then["servers"] if s["alive"]] == ["s1"]
        shown = cli("run", "show", str(run_id), "--as-of", mid, "--json")
        assert (shown["status"], shown["tasks"][0]["status"], shown["ended_at"]) == ("running", "running", None)
    bad = runner.invoke(actorbatch.cli.app.app, ["--db", db_url, "status", "--as-of", "yesterday"])
    assert bad.exit_code == 2 and "--as-of: expected ISO 8601" in bad.stderr


def test_snapshots_taken_within_a_batch_hold_the_rows_written_at_their_positions(
        db_url: str, clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """A snapshot is made from the folded state, wherever it falls in a batch: its rows are those the read models
    held at its position, as folding one event per batch and reading the tables after each shows."""
    monkeypatch.setattr(snapshots, "SNAPSHOT_EVERY", 2)
    with actorbatch.connect(db_url, user="alice", clock=clock) as client:
        drive(client, clock)
        for _ in range(6):
            client.run_job("pay", at=clock.now() + timedelta(minutes=5))
            clock.advance(10)
        truth: dict[int, dict[str, list[list[Any]]]] = {}
        stepped = Views(client.store, SqlDb(SCRATCH))
        stepped.create()
        stepped.catch_up(lambda at, _head: truth.setdefault(at, _sorted(snapshots.copied(stepped.db))), 1)
        at_once = Views(client.store, SqlDb(SCRATCH))
        at_once.create()
        at_once.catch_up()
        taken = at_once.db.query("SELECT position, data FROM ab_snapshots ORDER BY position")
        assert len(taken) > 3
        for position, data in taken:
            assert _sorted(_rows(data)) == truth[position], position
        stepped.db.close()
        at_once.db.close()


def _rows(data: bytes) -> dict[str, Any]:
    return {table: {row[0]: list(row) for row in rows}
            for table, rows in codec.decode(zlib.decompress(bytes(data))).items()}


def _sorted(tables: dict[str, dict[Any, list[Any]]]) -> dict[str, list[list[Any]]]:
    return {table: [[bytes(v) if isinstance(v, memoryview) else v for v in rows[key]] for key in sorted(rows)]
            for table, rows in tables.items()}
