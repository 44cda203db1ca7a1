"""Write a golden log: a mixed workload run by this release, stored as raw records plus what it should show.

`python -m tests.golden.write tests/golden/<version>` runs conditional branches, a retried task, a run-later run,
a cancelled run, a scheduled job and a drained server, then saves every stored event exactly as recorded (topic
and bytes) with the listings this release shows for that log at one fixed moment. Later releases must replay it
to the same listings (`tests/test_golden.py`): a change that breaks old logs fails CI.
"""

import base64
import json
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import actorbatch
from actorbatch.clock import ManualClock, SystemClock
from actorbatch.domain.jobfile import parse_job
from actorbatch.domain.runs import Run
from actorbatch.domain.servers import Server

EXAMPLES = Path(actorbatch.__file__).parent / "examples"
USER = "golden"


def workload(client: actorbatch.Client) -> None:
    client.add_job(actorbatch.Job.from_toml(EXAMPLES / "ax2009-walkthrough.toml"))
    client.add_job(actorbatch.Job.from_toml(EXAMPLES / "month-end-report.toml"))
    client.add_job(parse_job({"name": "flaky", "tasks": [
        {"name": "try", "run": "tests.bodies:flaky", "params": {"succeed_on": 2}, "retries": 2,
         "retry_delay": "0.1s"},
        {"name": "log", "run": "tests.bodies:chatty", "params": {"lines": 3}, "after": {"try": "succeeded"}}]}))
    client.add_job(parse_job({"name": "ticker", "schedule": {"every": "1s", "misfire": "skip", "overlap": "skip"},
                              "tasks": [{"name": "tick", "run": "tests.bodies:stubborn",
                                         "params": {"seconds": 1.2}}]}))
    client.add_job(parse_job({"name": "orphan", "tasks": [{"name": "work", "run": "actorbatch.examples:noop"}]}))
    client.add_job(actorbatch.Job.from_toml(EXAMPLES / "ax2009-walkthrough.toml"), replace=True)
    orphan = ghost_claims(client, client.run_job("orphan"))
    client.add_job(parse_job({"name": "slow", "tasks": [{"name": "nap", "run": "tests.bodies:stubborn",
                                                          "params": {"seconds": 0.2}}]}))
    with actorbatch.BatchServer(client.url, actorbatch.ServerConfig(name="golden1", threads=3, lease_timeout_s=5)):
        runs = [client.run_job("ax2009-walkthrough"), client.run_job("ax2009-walkthrough", {"fail": []}),
                client.run_job("month-end-report"), client.run_job("flaky"),
                client.run_job("flaky", at=client.clock.now() + timedelta(seconds=1))]
        doomed = client.run_job("slow", at=client.clock.now() + timedelta(hours=1))
        client.cancel(doomed)
        for run in runs:
            client.wait(run, timeout=60)
        client.wait(orphan, timeout=60)
        ghost_reports(client, orphan)
        time.sleep(2.5)  # a few schedule fires, some skipped while the previous run is active
        client.unschedule("ticker")
        client.schedule("ticker")
        time.sleep(1.5)
        client.unschedule("ticker")
        client.remove_job("slow")
        client.drain("golden1")
    time.sleep(0.5)


def ghost_claims(client: actorbatch.Client, run_id: UUID) -> UUID:
    """A server that claims a task and dies: its lease runs out, the attempt is lost and retried."""
    now = client.clock.now()
    ghost = Server()
    started = ghost.start("ghost", ("default",), 1, 1.0, "elsewhere", 1, now)
    ghost.apply(started)
    run = client.store.load(Run, run_id)
    assert run is not None
    client.store.append(started, run.claim("work", "ghost", now, 1.0))
    return run_id


def ghost_reports(client: actorbatch.Client, run_id: UUID) -> None:
    """The dead server's result arrives after its attempt was lost: recorded, ignored (fencing)."""
    run = client.store.load(Run, run_id)
    assert run is not None
    client.store.append(run.finish("work", 1, client.clock.now(), exit_status=None, result="late"))


def listings(client: actorbatch.Client) -> dict[str, Any]:
    """What users see of a log: every listing and every run's detail."""
    runs = client.runs(limit=10_000)
    return {"jobs": client.jobs(), "runs": runs, "details": {r["id"]: client.run(r["id"]) for r in runs},
            "explain": {r["id"]: client.explain(r["id"]) for r in runs},
            "servers": client.servers(), "audit": client.audit(limit=100_000), "status": client.status(),
            "verify": client.verify()}


def write(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/golden.db"
        actorbatch.init(url)
        with actorbatch.connect(url, user=USER, clock=SystemClock()) as client:
            workload(client)
            records = client.store.read_raw(0, 1_000_000)
            at = client.clock.now()
        with actorbatch.connect(url, user=USER, clock=ManualClock(at)) as client:
            expected = listings(client)
    with (folder / "log.jsonl").open("w") as out:
        for r in records:
            out.write(json.dumps({"position": r.id, "originator_id": str(r.originator_id),
                                  "originator_version": r.originator_version, "topic": r.topic,
                                  "state": base64.b64encode(r.state).decode()}) + "\n")
    (folder / "expected.json").write_text(json.dumps({"at": at.isoformat(), "user": USER, **expected},
                                                     indent=1, sort_keys=True, default=str) + "\n")


if __name__ == "__main__":
    write(Path(sys.argv[1]))
