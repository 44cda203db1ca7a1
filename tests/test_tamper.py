"""Tampering drills: each change someone with write access to the database could make, on SQLite and PostgreSQL,
is caught by the check that claims it (docs/audit.md), which names the event changed (aggregate, version, position).

The log every drill starts from, signed with a key: 1-3 job.added a, b, c; 4 run.created; 5 run.cancelled.
"""

import sqlite3
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

import pytest

import actorbatch
from actorbatch.clock import ManualClock
from actorbatch.domain.events import job_id
from actorbatch.domain.jobfile import parse_job
from actorbatch.store.signing import KEY_ENV
from actorbatch.store.transcoder import MsgpackTranscoder
from actorbatch.store.urls import parse_url
from tests.conftest import T0

KEY = "a signing key of servers and admins"
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def job(name: str) -> Any:
    return parse_job({"name": name, "tasks": [{"name": "t", "run": "m:f"}]})


class Raw:
    """The database itself, as an attacker with write access sees it: the events table and the seals."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite"):
            self.conn: Any = sqlite3.connect(parse_url(url).path, isolation_level=None)
            self.table, self.pos, self.mark = "stored_events", "rowid", "?"
        else:
            import psycopg

            self.conn = psycopg.connect(url, autocommit=True)
            self.table, self.pos, self.mark = "actorbatch_events", "notification_id", "%s"

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> list[Any]:
        statement = statement.replace("EVENTS", self.table).replace("POS", self.pos).replace("?", self.mark)
        cursor = self.conn.execute(statement, params)
        return list(cursor.fetchall()) if cursor.description else []

    def state(self, position: int) -> bytes:
        return bytes(self.sql("SELECT state FROM EVENTS WHERE POS = ?", (position,))[0][0])

    def set_state(self, position: int, state: bytes) -> None:
        self.sql("UPDATE EVENTS SET state = ? WHERE POS = ?", (state, position))

    def identity(self, position: int) -> tuple[UUID, int]:
        aggregate, version = self.sql("SELECT originator_id, originator_version FROM EVENTS WHERE POS = ?",
                                      (position,))[0]
        return UUID(str(aggregate)), int(version)

    def swap(self, a: int, b: int) -> None:
        """Exchange two events' places in the log."""
        (ia, va, ta, sa), = self.sql("SELECT originator_id, originator_version, topic, state FROM EVENTS "
                                     "WHERE POS = ?", (a,))
        (ib, vb, tb, sb), = self.sql("SELECT originator_id, originator_version, topic, state FROM EVENTS "
                                     "WHERE POS = ?", (b,))
        self.sql("UPDATE EVENTS SET originator_version = -1 WHERE POS = ?", (a,))
        self.sql("UPDATE EVENTS SET originator_id = ?, originator_version = ?, topic = ?, state = ? WHERE POS = ?",
                 (ia, va, ta, sa, b))
        self.sql("UPDATE EVENTS SET originator_id = ?, originator_version = ?, topic = ?, state = ? WHERE POS = ?",
                 (ib, vb, tb, sb, a))

    def close(self) -> None:
        self.conn.close()


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        target = f"sqlite:///{tmp_path / 'actorbatch.db'}"
        actorbatch.init(target)
        return target
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def signed(monkeypatch: pytest.MonkeyPatch) -> Callable[[bool], None]:
    """Whether this process holds the signing key from now on."""
    def hold(key: bool) -> None:
        if key:
            monkeypatch.setenv(KEY_ENV, KEY)
        else:
            monkeypatch.delenv(KEY_ENV, raising=False)
    return hold


@pytest.fixture
def raw(url: str, signed: Callable[[bool], None]) -> Iterator[Raw]:
    """The drills' log, sealed (the read models have folded it) and signed."""
    signed(True)
    with actorbatch.connect(url, user="alice", clock=ManualClock(T0)) as client:
        for name in "abc":
            client.add_job(job(name))
        client.cancel(client.run_job("a"))
        client.views.catch_up()
    conn = Raw(url)
    yield conn
    conn.close()


def reseal(url: str, after: int) -> None:
    """Rewrite the seals after position `after` to match the log as it is now, as the store would make them."""
    with actorbatch.connect(url, user="mallory") as client:
        sealer = client.views.projector.sealer
        client.views.db.execute("DELETE FROM ab_seals WHERE position > ?", (after,))
        seals = sealer.seals(after, client.store.read_raw(after, 100))
        with client.views.db.transaction():
            sealer.write(seals)


def verify(url: str, head: str | None = None) -> dict[str, Any]:
    with actorbatch.connect(url, user="auditor") as client:
        return client.verify(head)


def caught(result: dict[str, Any]) -> dict[str, tuple[str, int | None, str | None, int | None]]:
    """Per check, what it found: (kind, position, aggregate, version)."""
    assert not result["ok"]
    return {f["check"]: (f["kind"], f["position"], f["aggregate"], f["version"]) for f in result["findings"]}


def test_an_untouched_log_verifies_with_every_check(url: str, raw: Raw) -> None:
    head = verify(url)["head"]
    result = verify(url, head)
    assert (result["ok"], result["findings"], result["events"], result["signed"]) == (True, [], 5, 5)
    assert result["signatures_checked"] and result["sealed_until"] == 5


def test_a_flipped_byte_is_named_by_the_seals_and_the_signatures(url: str, raw: Raw) -> None:
    raw.set_state(2, raw.state(2).replace(b"m:f", b"m:g"))
    b = str(job_id("b"))
    assert caught(verify(url)) == {"seals": ("changed", 2, b, 1), "signatures": ("forged", 2, b, 1)}


def test_a_deleted_event_is_named_by_the_seals_and_by_the_gap_it_leaves(url: str, raw: Raw) -> None:
    run, _ = raw.identity(4)
    raw.sql("DELETE FROM EVENTS WHERE POS = 4")
    assert caught(verify(url)) == {"seals": ("missing", 4, str(run), 1), "versions": ("missing", 5, str(run), 1)}


def test_a_deleted_last_event_is_named_by_the_seals(url: str, raw: Raw) -> None:
    run, _ = raw.identity(5)
    raw.sql("DELETE FROM EVENTS WHERE POS = 5")
    assert caught(verify(url)) == {"seals": ("missing", 5, str(run), 2)}


def test_swapped_events_are_named_by_the_seals(url: str, raw: Raw) -> None:
    run, _ = raw.identity(4)
    raw.swap(2, 4)
    assert caught(verify(url)) == {"seals": ("moved", 2, str(run), 1)}


def test_an_edited_timestamp_is_named_by_the_seals_and_the_signatures(url: str, raw: Raw) -> None:
    run, _ = raw.identity(5)
    state = raw.state(5)
    mark, payload = state[:33], state[33:]  # the signature, kept: the attacker has no key to make a new one
    codec = MsgpackTranscoder()
    fields = codec.decode(payload)
    fields["timestamp"] = fields["timestamp"].replace(year=2025)
    raw.set_state(5, mark + codec.encode(fields))
    assert caught(verify(url)) == {"seals": ("changed", 5, str(run), 2), "signatures": ("forged", 5, str(run), 2)}


def test_an_append_through_the_store_without_the_key_is_named_by_the_signatures(
        url: str, raw: Raw, signed: Callable[[bool], None]) -> None:
    signed(False)
    with actorbatch.connect(url, user="mallory") as forger:
        forger.add_job(job("evil"))
        forger.views.catch_up()  # even sealed by the read models, it stays unsigned
    signed(True)
    assert caught(verify(url)) == {"signatures": ("unsigned", 6, str(job_id("evil")), 1)}


def test_an_append_in_sql_is_named_by_the_signatures(url: str, raw: Raw) -> None:
    run, _ = raw.identity(5)
    raw.sql("INSERT INTO EVENTS (originator_id, originator_version, topic, state) VALUES (?, ?, ?, ?)",
            (str(run), 3, raw.sql("SELECT topic FROM EVENTS WHERE POS = 5")[0][0], raw.state(5)))
    assert caught(verify(url)) == {"signatures": ("forged", 6, str(run), 3)}


def test_a_change_past_the_last_seal_is_named_by_a_head_and_the_signatures_and_not_blessed(
        url: str, raw: Raw) -> None:
    with actorbatch.connect(url, user="alice", clock=ManualClock(T0)) as client:
        client.add_job(job("d"))  # not folded yet: no seal
    head = verify(url)["head"]
    assert head.startswith("6:")
    raw.set_state(6, raw.state(6).replace(b"m:f", b"m:g"))
    d = str(job_id("d"))
    for _ in range(2):  # verifying seals nothing: the second look still sees the change
        assert caught(verify(url, head)) == {"head": ("diverged", 6, None, None),
                                             "signatures": ("forged", 6, d, 1)}


def test_a_change_with_the_seals_rewritten_is_named_by_the_signatures_and_a_head(url: str, raw: Raw) -> None:
    head = verify(url)["head"]
    raw.set_state(2, raw.state(2).replace(b"m:f", b"m:g"))
    reseal(url, 1)
    assert caught(verify(url, head)) == {"head": ("diverged", 5, None, None),
                                         "signatures": ("forged", 2, str(job_id("b")), 1)}


def test_a_change_with_its_own_seal_rewritten_is_named_by_the_next_seal(url: str, raw: Raw) -> None:
    later = raw.sql("SELECT position, digest FROM ab_seals WHERE position > 2")
    raw.set_state(2, raw.state(2).replace(b"m:f", b"m:g"))
    reseal(url, 1)  # seals the changed event anew, and the ones after it...
    for position, digest in later:  # ...of which only its own seal is kept
        raw.sql("UPDATE ab_seals SET digest = ? WHERE position = ?", (digest, position))
    assert caught(verify(url))["seals"] == ("changed", 2, str(job_id("b")), 1)


def test_deleted_seals_are_named_by_the_seals(url: str, raw: Raw) -> None:
    raw.sql("DELETE FROM ab_seals WHERE position >= 3")
    assert caught(verify(url)) == {"seals": ("missing", 3, str(job_id("c")), 1)}


def test_the_cli_prints_a_head_and_verifies_against_it(url: str, raw: Raw) -> None:
    from typer.testing import CliRunner

    from actorbatch.cli.app import app

    runner = CliRunner()
    head = runner.invoke(app, ["--db", url, "audit", "head"])
    assert head.exit_code == 0 and head.stdout.startswith("5:")
    assert runner.invoke(app, ["--db", url, "audit", "verify", "--head", head.stdout.strip()]).exit_code == 0
    bad = runner.invoke(app, ["--db", url, "audit", "verify", "--head", "five"])
    assert bad.exit_code == 2 and "--head: expected POSITION:DIGEST" in bad.stderr
    raw.set_state(2, raw.state(2).replace(b"m:f", b"m:g"))
    changed = runner.invoke(app, ["--db", url, "audit", "verify", "--head", head.stdout.strip()])
    assert changed.exit_code == 1
    assert f"seals: event {job_id('b')} v1 at position 2 was changed after it was sealed" in changed.stderr
    assert runner.invoke(app, ["--db", url, "audit", "head"]).exit_code == 1


def test_a_short_signing_key_is_refused(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "short")
    with pytest.raises(actorbatch.ActorbatchError, match=f"{KEY_ENV}: expected at least 16 characters, got 5"):
        actorbatch.init(f"sqlite:///{tmp_path / 'actorbatch.db'}")
