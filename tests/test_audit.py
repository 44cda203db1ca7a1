"""The audit trail: who did what, from the log, filterable, and identical after a rebuild."""

from datetime import timedelta

import actorbatch
from actorbatch.domain.jobs import parse_job
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
