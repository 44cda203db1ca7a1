"""The same store and server on PostgreSQL: the store for clusters."""

from pathlib import Path

import pytest

import actorbatch
from actorbatch.domain.jobfile import parse_job
from tests.conftest import pg_available
from tests.processes import start_server, stop

pytestmark = pytest.mark.postgres
EXAMPLES = Path(__file__).parent.parent / "src" / "actorbatch" / "examples"


def test_a_single_server_runs_the_walkthrough_on_postgresql(pg_url: str) -> None:
    with actorbatch.connect(pg_url, user="pg") as client:
        client.add_job(actorbatch.Job.from_toml(EXAMPLES / "ax2009-walkthrough.toml"))
        run_id = client.run_job("ax2009-walkthrough")
        with actorbatch.BatchServer(pg_url, actorbatch.ServerConfig(name="pg1", threads=2, lease_timeout_s=5)):
            detail = client.wait(run_id, timeout=60)
        assert detail["status"] == "failed"
        assert {t["name"]: t["status"] for t in detail["tasks"]} == {
            "TASK1": "succeeded", "TASK2": "failed", "TASK3": "skipped", "TASK4": "skipped",
            "TASK5": "succeeded", "TASK6": "skipped", "TASK7": "skipped"}
        before = client.runs()
        client.rebuild_projections()
        assert client.runs() == before


def test_two_server_processes_share_work_on_postgresql(pg_url: str) -> None:
    with actorbatch.connect(pg_url, user="pg") as client:
        client.add_job(parse_job({"name": "wide", "tasks": [
            {"name": f"t{i}", "run": "actorbatch.examples:sleep", "params": {"seconds": 0.05}} for i in range(20)]}))
        servers = [start_server(pg_url, f"pg{i}", threads=3) for i in (1, 2)]
        try:
            detail = client.wait(client.run_job("wide"), timeout=60)
        finally:
            assert [stop(p) for p in servers] == [0, 0]
        assert detail["status"] == "succeeded"
        assert all(t["attempts"] == 1 for t in detail["tasks"])


def test_missing_postgresql_gives_a_clear_reason() -> None:
    reason = pg_available()
    assert reason is None or "not reachable" in reason
