"""The event store: msgpack round trips, optimistic concurrency, URLs, initialisation, corrupt records."""

import enum
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest

import actorbatch
from actorbatch.domain.events import job_id
from actorbatch.domain.jobfile import parse_job
from actorbatch.domain.jobs import JobAdded, JobState
from actorbatch.domain.quarantine import Quarantined, UnreadableJobEvent
from actorbatch.errors import ActorbatchError, Conflict
from actorbatch.store.eventstore import EventStore, NotInitialised
from actorbatch.store.transcoder import MsgpackTranscoder
from actorbatch.store.urls import parse_url
from tests.conftest import T0


class Colour(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize("value", [
    uuid4(),
    T0,
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(1969, 7, 20, 20, 17, 40, 1, tzinfo=UTC),
    datetime(2026, 3, 29, 2, 30, tzinfo=BERLIN),  # does not exist in Berlin: must come back as written
    datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=BERLIN),  # the second of two 02:30s
    datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime(2026, 1, 1, 12),  # naive stays naive
    Decimal("1.10"), Decimal("-0E-7"),
    Colour.RED, Level.HIGH,
    (1, (2, "three"), []), b"\x00\xff", [1, [2, 3]], {"a": {"b": None}}, {1: "int key"},
    "text", 2**63 - 1, -1.5, True, None,
])
def test_the_transcoder_round_trips_exactly(value: object) -> None:
    codec = MsgpackTranscoder()
    back = codec.decode(codec.encode({"v": value}))["v"]
    assert back == value
    assert type(back) is type(value)
    if isinstance(value, datetime):
        assert (back.tzinfo, back.fold, back.utcoffset()) == (value.tzinfo, value.fold, value.utcoffset())


def test_the_transcoder_refuses_what_it_cannot_store() -> None:
    with pytest.raises(TypeError, match="cannot encode set"):
        MsgpackTranscoder().encode({"v": {1, 2}})


def added(name: str, version: int) -> JobAdded:
    definition = parse_job({"name": name, "tasks": [{"name": "t", "run": "m:f"}]})
    return JobAdded(originator_id=job_id(name), originator_version=version, timestamp=T0,
                    definition=definition.to_dict(), user="u")


def test_two_writers_of_one_version_exactly_one_wins(db_url: str) -> None:
    first, second = EventStore(db_url), EventStore(db_url)
    try:
        first.append(added("j", 1))
        with pytest.raises(Conflict):
            second.append(added("j", 1))
        assert second.head() == 1
        loaded = second.load(JobState, job_id("j"))
        assert loaded is not None and loaded.version == 1
    finally:
        first.close()
        second.close()


def test_a_batch_is_all_or_nothing(db_url: str) -> None:
    store = EventStore(db_url)
    try:
        store.append(added("a", 1))
        with pytest.raises(Conflict):
            store.append(added("b", 1), added("a", 1))
        assert [e.originator_id for _, e in store.read(0)] == [job_id("a")]
    finally:
        store.close()


def test_listeners_hear_this_process_appends_and_follow_skips_them(db_url: str) -> None:
    store, other = EventStore(db_url), EventStore(db_url)
    heard: list[object] = []
    try:
        store.listen(heard.extend)
        assert store.follow(0) == (0, [], 0)
        store.append(added("mine", 1))
        other.append(added("theirs", 1))
        position, events, read = store.follow(0)
        assert heard == [added("mine", 1)]
        assert (position, read) == (2, 2)
        assert [e.originator_id for e in events] == [job_id("theirs")]
    finally:
        store.close()
        other.close()


@pytest.mark.parametrize(("url", "message"), [
    ("mysql://x/y", "unsupported store URL"),
    ("sqlite:///", "names no file"),
    ("postgresql://host-only", "expected postgresql://user@host:port/dbname"),
])
def test_bad_urls_are_refused_with_a_clear_message(url: str, message: str) -> None:
    with pytest.raises(ActorbatchError, match=message):
        parse_url(url)


def test_only_init_creates_the_store(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with pytest.raises(NotInitialised, match="actorbatch init"):
        actorbatch.connect(f"sqlite:///{path}")
    assert not path.exists()
    actorbatch.init(f"sqlite:///{path}")
    actorbatch.init(f"sqlite:///{path}")  # idempotent: init also upgrades an existing store
    with actorbatch.connect(f"sqlite:///{path}") as client:
        assert client.jobs() == []


def test_a_file_that_is_not_a_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    sqlite3.connect(path).execute("CREATE TABLE x (y)").connection.commit()
    with pytest.raises(NotInitialised):
        actorbatch.connect(f"sqlite:///{path}")


def test_a_corrupt_record_is_named_not_a_traceback(client: actorbatch.Client, db_url: str) -> None:
    client.add_job(parse_job({"name": "j", "tasks": [{"name": "t", "run": "m:f"}]}))
    with sqlite3.connect(parse_url(db_url).path) as conn:
        conn.execute("UPDATE stored_events SET state = x'c1c1c1'")
    ((_, event),) = client.store.read(0)  # a stand-in that names the record, for readers to quarantine
    assert isinstance(event, UnreadableJobEvent)
    assert (event.originator_id, event.originator_version, event.action) == (job_id("j"), 1, "job.added")
    assert event.topic.endswith(":JobAdded") and event.reason
    with pytest.raises(Quarantined, match=rf"job {job_id('j')} v1 quarantined: corrupt event \(job.added\): "):
        client.store.load(JobState, job_id("j"))
