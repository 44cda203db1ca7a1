"""History retention: finished runs past their age move to the archive, which keeps the audit chain whole; a
server's start reads one event of its name however long it heartbeated; servers silent for long leave the list."""

import getpass
import json
import socket
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from typer.testing import CliRunner

import actorbatch
from actorbatch import maintenance
from actorbatch.cli.app import app
from actorbatch.clock import ManualClock, SystemClock
from actorbatch.domain.events import Event
from actorbatch.domain.jobfile import parse_job
from actorbatch.domain.retention import parse_retention
from actorbatch.errors import InvalidJob, PermissionDenied
from actorbatch.node.boot import register
from actorbatch.store.eventstore import EventStore
from actorbatch.store.urls import parse_url

runner = CliRunner()
DAY_S = 86_400.0


def listings(client: actorbatch.Client) -> list[Any]:
    return [client.runs(limit=1000), client.jobs(), client.audit(), client.servers()]


def finished_history(url: str) -> dict[str, Any]:
    """Three succeeded runs (with log lines), one failed, one cancelled, run by a real server."""
    with actorbatch.connect(url, user="tester") as client:
        client.add_job(parse_job({"name": "hello", "alerts": "always", "tasks": [  # messages: archived with a run
            {"name": "a", "run": "actorbatch.examples:echo", "params": {"say": "hi"}}]}))
        client.add_job(parse_job({"name": "bad", "tasks": [{"name": "a", "run": "actorbatch.examples:fail"}]}))
        ok = [client.run_job("hello") for _ in range(3)]
        failed = client.run_job("bad")
        cancelled = client.run_job("hello", at=client.clock.now() + timedelta(hours=1))
        client.cancel(cancelled)
        config = actorbatch.ServerConfig(name="s1", threads=2, lease_timeout_s=1.5, projector="thread")
        with actorbatch.BatchServer(url, config):
            for run in (*ok, failed):
                client.wait(run, timeout=60)
            time.sleep(2.0)  # heartbeats every 0.5 s: a few that supersede each other
        return {"ok": ok, "failed": failed, "cancelled": cancelled}


def prune_and_check(url: str) -> None:
    runs = finished_history(url)
    now = actorbatch.connect(url, user="tester")  # the server list as of now (40 days on, s1 is forgotten)
    servers = now.servers()
    assert [s["name"] for s in servers] == ["s1"]
    later = actorbatch.connect(url, user="tester", clock=ManualClock(SystemClock().now() + timedelta(days=40)))
    keep = parse_retention("succeeded=30d,failed=180d,cancelled=30d")
    shown = later.run(runs["ok"][0])
    logged = later.logs(runs["ok"][0])
    before = later.runs(limit=1000)
    dry = maintenance.prune(later, dry_run=True, keep=keep)
    assert dry["runs"] == {"succeeded": 3, "failed": 0, "cancelled": 1} and dry["archived_events"] == 0
    assert later.runs(limit=1000) == before  # a dry run moves nothing
    live = dry["live_events"]

    pruned = maintenance.prune(later, keep=keep)
    assert pruned["runs"] == dry["runs"] and pruned["events"] >= 4 * 2 + 3  # created, claimed, ended; log lines
    assert pruned["heartbeats"] > 0 and pruned["live_events"] == live - pruned["events"] - pruned["heartbeats"]
    assert [r["id"] for r in later.runs(limit=1000)] == [str(runs["failed"])]
    archived = later.run(str(runs["ok"][0])[:8])
    assert archived["archived"] is True and {**archived, "archived": False} == shown
    assert later.logs(runs["ok"][0]) == logged and [line.line for line in logged] == ["INFO: say = hi"]
    assert [n["channel"] for n in archived["notifications"]] == ["message"]
    assert [m.run_id for m in later.views.messages("tester", unread_only=False)] == [runs["failed"]]
    assert later.verify()["ok"], later.verify()
    assert later.verify()["events"] == pruned["live_events"] + pruned["archived_events"]

    seen = [listings(later), now.servers()]
    assert seen[1] == servers  # the heartbeats left fold to the same record
    later.rebuild_projections()
    assert [listings(later), now.servers()] == seen
    assert later.verify()["ok"]
    again = maintenance.prune(later, keep=keep)
    assert again["events"] == 0 and again["runs"] == {"succeeded": 0, "failed": 0, "cancelled": 0}
    assert maintenance.upkeep(later) and all(s["outcome"] == "ok" for s in maintenance.upkeep(later))
    later.close()
    now.close()


@pytest.mark.slow
def test_prune_archives_old_runs_and_keeps_the_chain_on_sqlite(db_url: str) -> None:
    prune_and_check(db_url)


@pytest.mark.slow
@pytest.mark.postgres
def test_prune_archives_old_runs_and_keeps_the_chain_on_postgresql(pg_url: str) -> None:
    prune_and_check(pg_url)


def test_a_changed_archived_event_fails_verify(db_url: str, client: actorbatch.Client) -> None:
    client.add_job(parse_job({"name": "hello", "tasks": [{"name": "a", "run": "actorbatch.examples:noop"}]}))
    run = client.run_job("hello")
    client.cancel(run)
    client.add_job(parse_job({"name": "later", "tasks": [{"name": "a", "run": "actorbatch.examples:noop"}]}))
    later = actorbatch.connect(db_url, user="tester", clock=ManualClock(client.clock.now() + timedelta(days=31)))
    assert maintenance.prune(later)["runs"]["cancelled"] == 1
    assert later.verify()["ok"]
    later.views.db.execute("UPDATE ab_archive SET state = ? WHERE originator_version = 2", (b"\x80",))
    assert not later.verify()["ok"]
    later.close()


def test_the_retention_policy_is_validated() -> None:
    assert parse_retention(None) == {"succeeded": 30 * DAY_S, "failed": 180 * DAY_S, "cancelled": 30 * DAY_S}
    assert parse_retention("failed=2d")["failed"] == 2 * DAY_S
    for bad in ("running=1d", "failed", "failed=soon", "failed=0s", "failed=-1d"):
        with pytest.raises(InvalidJob, match="ACTORBATCH_RETENTION"):
            parse_retention(bad)


def test_history_prune_cli_refuses_a_bad_policy_and_writes_nothing(db_url: str) -> None:
    result = runner.invoke(app, ["--db", db_url, "history", "prune"], env={"ACTORBATCH_RETENTION": "done=1d"})
    assert result.exit_code == 2 and result.stderr.startswith("error: ACTORBATCH_RETENTION")
    result = runner.invoke(app, ["--db", db_url, "history", "prune", "--dry-run", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["dry_run"] is True


def test_init_schedules_the_maintenance_job_once_and_keeps_an_edited_one(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    assert runner.invoke(app, ["--db", url, "init"]).exit_code == 0
    [job] = json.loads(runner.invoke(app, ["--db", url, "job", "list", "--json"]).stdout)
    assert job["name"] == "actorbatch-maintenance" and job["scheduled"] and job["tasks"] == 2
    assert runner.invoke(app, ["--db", url, "job", "unschedule", "actorbatch-maintenance"]).exit_code == 0
    assert runner.invoke(app, ["--db", url, "init"]).exit_code == 0
    [job] = json.loads(runner.invoke(app, ["--db", url, "job", "list", "--json"]).stdout)
    assert not job["scheduled"]  # init leaves an existing job as its owner left it


class CountingLog:
    """The event log, counting the events a caller reads from it."""

    def __init__(self, store: EventStore) -> None:
        self.store, self.read = store, 0

    def append(self, *events: Event) -> None:
        self.store.append(*events)

    def append_if(self, unchanged: Mapping[UUID, int], *events: Event) -> None:
        self.store.append_if(unchanged, *events)

    def last(self, aggregate_id: Any) -> Event | None:
        self.read += 1
        return self.store.last(aggregate_id)

    def load(self, factory: Any, aggregate_id: Any) -> Any:
        found = self.store.events(aggregate_id)
        self.read += len(found)
        return self.store.load(factory, aggregate_id)

    def events(self, aggregate_id: Any, after_version: int = 0) -> list[Event]:
        found = self.store.events(aggregate_id, after_version)
        self.read += len(found)
        return found

    def recorded(self, event: Event) -> bool:
        return self.store.recorded(event)


def test_a_start_reads_one_event_of_its_name_however_long_it_heartbeated(db_url: str) -> None:
    store, clock = EventStore(db_url), ManualClock(SystemClock().now())
    server = register(store, "old", ["default"], 2, 30.0, socket.gethostname(), 1, clock.now())
    for _ in range(20):
        beats = []
        for _ in range(250):  # a year at the default lease timeout is 3.2 million: the bound is the same
            clock.advance(10.0)
            beat = server.heartbeat(0, clock.now())
            server.apply(beat)
            beats.append(beat)
        store.append(*beats)
    counting = CountingLog(store)
    restarted = register(counting, "old", ["default"], 2, 30.0, socket.gethostname(), 2, clock.now())
    assert counting.read == 1 and restarted.version == 5002 and not restarted.stopped
    store.close()


def test_servers_silent_for_a_day_leave_the_list_but_not_the_log(db_url: str) -> None:
    store, clock = EventStore(db_url), ManualClock(SystemClock().now())
    server = register(store, "gone", ["default"], 2, 30.0, socket.gethostname(), 1, clock.now())
    store.append(server.stop("drained", clock.now()))
    with actorbatch.connect(db_url, user="tester", clock=clock) as client:
        assert [s["name"] for s in client.servers()] == ["gone"]
        clock.advance(DAY_S + 1)
        assert client.servers() == []
        assert [e.originator_version for e in client.store.events(server.id)] == [1, 2]  # type: ignore[arg-type]
    store.close()


@pytest.mark.slow
def test_the_maintenance_job_runs_on_a_server_and_logs_each_step(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    assert runner.invoke(app, ["--db", url, "init"]).exit_code == 0
    with actorbatch.connect(url, user="tester") as client:
        run = client.run_job("actorbatch-maintenance")
        config = actorbatch.ServerConfig(name="s1", threads=2, lease_timeout_s=3, projector="thread")
        with actorbatch.BatchServer(url, config):
            assert client.wait(run, timeout=120)["status"] == "succeeded"
        lines = [line[-1] for line in client.logs(run)]
    assert any("retention: succeeded=30d, failed=180d, cancelled=30d" in line for line in lines)
    assert any("archived runs" in line for line in lines)
    assert [line for line in lines if ": ok" in line] == [
        "INFO: PRAGMA wal_checkpoint(TRUNCATE): ok", "INFO: VACUUM: ok", "INFO: ANALYZE: ok"]


def test_each_scheduled_jobs_latest_fire_stays_live(db_url: str, client: actorbatch.Client) -> None:
    """Its fire time is where the schedule resumes: a rebuild must still find it, or a starting scheduler would
    take it for missed and create its run again."""
    client.add_job(parse_job({"name": "daily", "schedule": {"daily": "02:00"},
                              "tasks": [{"name": "a", "run": "actorbatch.examples:noop"}]}))
    now = client.clock.now()
    made = client.backfill("daily", now - timedelta(days=5), now - timedelta(days=2))
    for run in made:
        client.cancel(run["run_id"])
    later = actorbatch.connect(db_url, user="tester", clock=ManualClock(now + timedelta(days=40)))
    jobs = later.views.job_states()
    assert maintenance.prune(later)["runs"]["cancelled"] == len(made) - 1
    assert [r["id"] for r in later.runs()] == [made[-1]["run_id"]]
    later.rebuild_projections()
    assert [j.to_dict() for j in later.views.job_states()] == [j.to_dict() for j in jobs]
    later.close()


@pytest.mark.parametrize("url", ["postgresql://bob:s%3Acret@db:5433/batch?sslmode=require",
                                 "postgresql://bob@db/batch", "postgresql://bob:pw@/batch?host=/run/pg"])
def test_the_maintenance_job_reconnects_with_every_parameter_of_the_url(url: str) -> None:
    parsed = parse_url(url)
    assert parse_url(parsed.with_password()) == parsed


def test_pruning_a_closed_store_needs_admin(db_url: str, client: actorbatch.Client) -> None:
    client.grant(getpass.getuser(), ["admin"])  # the identity SQLite vouches for: it may act as tester
    with actorbatch.connect(db_url, user="tester") as tester:
        assert maintenance.prune(tester, dry_run=True)["dry_run"]  # reading needs nothing
        with pytest.raises(PermissionDenied, match="permission denied: tester lacks admin"):
            maintenance.prune(tester)
    with actorbatch.connect(db_url, user=getpass.getuser()) as boss:
        assert maintenance.prune(boss)["events"] == 0
        assert boss.audit()[-1]["action"] == "access.denied"
