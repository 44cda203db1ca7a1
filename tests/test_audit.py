"""The audit trail: who did what, from the log, filterable, and identical after a rebuild."""

import sqlite3
from datetime import timedelta

import actorbatch
from actorbatch.domain.jobfile import parse_job
from actorbatch.store.urls import parse_url
from tests.conftest import T0


def test_audit_log_lists_each_persons_actions(db_url: str, clock: actorbatch.clock.ManualClock) -> None:
    job = parse_job({"name": "j", "tasks": [{"name": "t", "run": "m:f"}]})
    with actorbatch.connect(db_url, user="alice", clock=clock) as alice, \
            actorbatch.connect(db_url, user="bob", clock=clock) as bob:
        alice.add_job(job)
        clock.advance(60)
        run_id = bob.run_job("j")
        clock.advance(60)
        alice.cancel(run_id)
        alice.remove_job("j")
        entries = bob.audit()
        assert [(e["user"], e["action"], e["subject"]) for e in entries] == [
            ("alice", "job.added", "j"), ("bob", "run.created", str(run_id)),
            ("alice", "run.cancelled", str(run_id)), ("alice", "job.removed", "j")]
        assert entries[1]["at"] == (T0 + timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert [e["action"] for e in bob.audit(user="bob")] == ["run.created"]
        assert len(bob.audit(since=T0 + timedelta(seconds=30), until=T0 + timedelta(seconds=90))) == 1
        assert len(bob.audit(job="j")) == 4
        assert bob.audit(job="other") == []
        bob.rebuild_projections()
        assert bob.audit() == entries


def test_audit_verify_notices_a_changed_or_deleted_event(client: actorbatch.Client, db_url: str) -> None:
    for name in ("a", "b", "c"):
        client.add_job(parse_job({"name": name, "tasks": [{"name": "t", "run": "m:f"}]}))
        client.views.catch_up()  # a checkpoint after each
    first = client.verify()
    assert first["ok"] and first["events"] == 3
    client.rebuild_projections()
    assert client.verify() == first  # a rebuild keeps the checkpoints and agrees with them
    path = parse_url(db_url).path
    with sqlite3.connect(path) as conn:
        (state,) = conn.execute("SELECT state FROM stored_events WHERE rowid = 2").fetchone()
        conn.execute("UPDATE stored_events SET state = ? WHERE rowid = 2", (state.replace(b"m:f", b"x:y"),))
    changed = client.verify()
    assert (changed["ok"], changed["first_mismatch"]) == (False, 2)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE stored_events SET state = ? WHERE rowid = 2", (state,))
        conn.execute("DELETE FROM stored_events WHERE rowid = 3")
    deleted = client.verify()
    assert (deleted["ok"], deleted["first_mismatch"]) == (False, 3)
