"""Golden logs: logs written by earlier releases replay to the listings those releases showed.

Each folder under tests/golden/ holds a log as stored (topic and bytes of every event) and what that release's
listings showed for it at one moment (`python -m tests.golden.write` made both). Replaying the log into a fresh store
of each kind must show at least the same: fields may be added to the JSON shapes, never renamed or changed.
"""

import base64
import json
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent

import actorbatch
from actorbatch.clock import ManualClock
from tests.golden.write import listings

GOLDEN = sorted(p for p in (Path(__file__).parent / "golden").iterdir() if (p / "log.jsonl").exists())


def replay(url: str, folder: Path) -> dict[str, Any]:
    expected = json.loads((folder / "expected.json").read_text())
    records = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]
    clock = ManualClock(datetime.fromisoformat(expected["at"]))
    with actorbatch.connect(url, user=expected["user"], clock=clock) as client:
        for r in records:  # one at a time, so positions come out as they were
            client.store.import_raw([StoredEvent(UUID(r["originator_id"]), r["originator_version"], r["topic"],
                                                 base64.b64decode(r["state"]))])
        assert [n.id for n in client.store.read_raw(0, len(records) + 1)] == [r["position"] for r in records]
        shown = json.loads(json.dumps(listings(client), sort_keys=True, default=str))
    return {"expected": expected, "shown": shown}


def contains(shown: Any, expected: Any, where: str = "") -> None:
    """`shown` has everything `expected` has (dicts may have more keys; lists are equal in length and order)."""
    if isinstance(expected, dict):
        assert isinstance(shown, dict), where
        for key, value in expected.items():
            assert key in shown, f"{where}.{key} is missing"
            contains(shown[key], value, f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(shown, list) and len(shown) == len(expected), f"{where}: {shown!r} != {expected!r}"
        for i, (a, b) in enumerate(zip(shown, expected, strict=True)):
            contains(a, b, f"{where}[{i}]")
    else:
        assert shown == expected, f"{where}: {shown!r} != {expected!r}"


@pytest.mark.parametrize("folder", GOLDEN, ids=[p.name for p in GOLDEN])
def test_a_golden_log_replays_to_the_same_listings_on_sqlite(db_url: str, folder: Path) -> None:
    result = replay(db_url, folder)
    expected = {k: v for k, v in result["expected"].items() if k not in ("at", "user")}
    contains(result["shown"], expected)


@pytest.mark.postgres
@pytest.mark.parametrize("folder", GOLDEN, ids=[p.name for p in GOLDEN])
def test_a_golden_log_replays_to_the_same_listings_on_postgresql(pg_url: str, folder: Path) -> None:
    result = replay(pg_url, folder)
    expected = {k: v for k, v in result["expected"].items() if k not in ("at", "user")}
    contains(result["shown"], expected)


def test_the_golden_logs_cover_every_kind_of_event() -> None:
    topics = {json.loads(line)["topic"].rpartition(":")[2]
              for folder in GOLDEN for line in (folder / "log.jsonl").read_text().splitlines()}
    assert {"RunCreated", "TaskClaimed", "TaskSucceeded", "TaskFailed", "RunCancelled", "LogWritten", "JobAdded",
            "JobUnscheduled", "JobRemoved", "ServerStarted", "ServerHeartbeat", "ServerStopped", "JobReplaced",
            "JobScheduled", "FireSkipped", "AttemptLost", "ResultIgnored", "DrainRequested"} <= topics
