"""Backup, restore, rebuild, verify: the whole store comes back (log, archive, checkpoints), on both stores."""

import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

import actorbatch
from actorbatch import maintenance
from actorbatch.cli.app import app
from actorbatch.clock import ManualClock
from actorbatch.domain.jobfile import parse_job

runner = CliRunner()


def ok(url: str, *args: str) -> str:
    result = runner.invoke(app, ["--db", url, *args])
    assert result.exit_code == 0, result.stderr
    return result.stdout


def backup_restore_rebuild_verify(url: str, tmp_path: Path) -> None:
    with actorbatch.connect(url, user="tester") as client:
        client.add_job(parse_job({"name": "hello", "tasks": [{"name": "a", "run": "actorbatch.examples:noop"}]}))
        for _ in range(3):
            client.cancel(client.run_job("hello"))
        later = actorbatch.connect(url, user="tester", clock=ManualClock(client.clock.now() + timedelta(days=31)))
        assert maintenance.prune(later)["runs"]["cancelled"] == 3  # the archive is part of what comes back
        kept = client.run_job("hello")
        verified = client.verify()
        listings = [ok(url, "job", "list", "--json"), ok(url, "run", "list", "--json")]
        file = tmp_path / "store.backup"
        assert "backed up" in ok(url, "backup", str(file))

        client.add_job(parse_job({"name": "after", "tasks": [{"name": "a", "run": "actorbatch.examples:noop"}]}))
        client.cancel(kept)
        later.close()
    assert "projections rebuild" in ok(url, "restore", str(file))
    ok(url, "projections", "rebuild")
    assert [ok(url, "job", "list", "--json"), ok(url, "run", "list", "--json")] == listings
    shown = json.loads(ok(url, "audit", "verify", "--json"))
    assert shown["ok"] and shown["head_digest"] == verified["head_digest"] and shown["events"] == verified["events"]


def test_backup_restore_rebuild_verify_on_sqlite(db_url: str, tmp_path: Path) -> None:
    backup_restore_rebuild_verify(db_url, tmp_path)


@pytest.mark.postgres
def test_backup_restore_rebuild_verify_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    backup_restore_rebuild_verify(pg_url, tmp_path)


def test_a_missing_backup_is_refused(db_url: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["--db", db_url, "restore", str(tmp_path / "nope")])
    assert result.exit_code == 1 and result.stderr.startswith("error: no backup at")
