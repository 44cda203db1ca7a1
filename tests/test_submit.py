"""Submitting runs from what an earlier submit read (the job, the guard's grounds): every use is checked in the
append's own transaction, so a change another process commits first always counts; on SQLite and PostgreSQL."""

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from uuid import uuid4

import pytest

import actorbatch
from actorbatch.clock import random_ids
from actorbatch.domain.events import job_id
from actorbatch.domain.jobfile import parse_job
from actorbatch.domain.runs import Run, RunCancelled, RunCreated
from actorbatch.errors import Moved, NotFound, PermissionDenied
from tests import test_users

store = test_users.store  # the fixture: a fresh store of each kind
FIRST = parse_job({"name": "pay", "tasks": [{"name": "first", "run": "actorbatch.examples:noop"}]})
SECOND = parse_job({"name": "pay", "tasks": [{"name": "second", "run": "actorbatch.examples:noop"}]})


@pytest.fixture
def pair(store: str) -> Iterator[tuple[actorbatch.Client, actorbatch.Client]]:
    """Two clients of one store, each with its own connections (as two processes have)."""
    with actorbatch.connect(store, user="ann") as ann, actorbatch.connect(store, user="bob") as bob:
        yield ann, bob


def tasks(client: actorbatch.Client, run_id: object) -> list[str]:
    return [t["name"] for t in client.run(str(run_id))["tasks"]]


def test_a_job_replaced_meanwhile_is_read_again(pair: tuple[actorbatch.Client, actorbatch.Client]) -> None:
    ann, bob = pair
    ann.add_job(FIRST)
    before = ann.run_job("pay")
    bob.add_job(SECOND, replace=True)
    after, keyed = ann.run_job("pay"), ann.run_job("pay", key="k1")
    many = ann.run_many("pay", [{"i": 1}, {"i": 2}])
    assert tasks(ann, before) == ["first"]
    assert [tasks(ann, r) for r in (after, keyed, *many)] == [["second"]] * 4
    versions = {ann.store.load(Run, r).job_version for r in (after, keyed, *many)}  # type: ignore[union-attr]
    assert versions == {2}


def test_a_job_removed_by_another_process_is_not_submitted_to(store: str) -> None:
    with actorbatch.connect(store, user="ann") as ann:
        ann.add_job(FIRST)
        ann.run_job("pay")
        ann.cancel(ann.runs(job="pay")[0]["id"])
        removed = subprocess.run([sys.executable, "-m", "actorbatch", "job", "remove", "pay"], capture_output=True,
                                 text=True, timeout=60, check=False, env={**os.environ, "ACTORBATCH_DB": store})
        assert removed.returncode == 0, removed.stderr
        head = ann.store.head()
        for submit in (lambda: ann.run_job("pay"), lambda: ann.run_job("pay", key="k"),
                       lambda: ann.run_many("pay", [{}])):
            with pytest.raises(NotFound, match="no job named 'pay'"):
                submit()
        assert ann.store.head() == head


def test_a_store_closed_meanwhile_refuses_and_records_it(pair: tuple[actorbatch.Client, actorbatch.Client]) -> None:
    ann, bob = pair
    ann.add_job(FIRST)
    ann.run_job("pay")  # open: ann counts as admin, and her client remembers it
    bob.grant("carol", ["admin"])  # closes the store
    head = ann.store.head()
    with pytest.raises(PermissionDenied, match=r"^permission denied: ann lacks job\.run$"):
        ann.run_job("pay")
    with pytest.raises(PermissionDenied, match=r"^permission denied: ann lacks job\.run$"):
        ann.run_many("pay", [{}])
    assert [e.action for _, e in ann.store.read(head)] == ["access.denied", "access.denied"]


def test_a_revoked_privilege_counts_at_the_next_submit(store: str) -> None:
    with actorbatch.connect(store) as admin:
        admin.grant(admin.user, ["admin"])
        admin.grant("ann", ["job.run"])
        admin.add_job(FIRST)
        with actorbatch.connect(store, user="ann") as ann:
            ann.run_job("pay")
            admin.revoke("ann", ["job.run"])
            with pytest.raises(PermissionDenied, match=r"^permission denied: ann lacks job\.run$"):
                ann.run_job("pay", key="k")
            admin.grant("ann", ["job.run"])
            assert ann.run_job("pay", key="k") == ann.run_job("pay", key="k")


def test_a_key_taken_by_another_process_returns_its_run(pair: tuple[actorbatch.Client, actorbatch.Client]) -> None:
    ann, bob = pair
    ann.add_job(FIRST)
    ann.run_job("pay")  # ann's client remembers the job
    theirs = bob.run_job("pay", key="once")
    head = ann.store.head()
    assert ann.run_job("pay", key="once") == theirs
    assert ann.store.head() == head


def test_a_conditional_append_writes_all_or_nothing(pair: tuple[actorbatch.Client, actorbatch.Client]) -> None:
    client = pair[0]
    client.add_job(FIRST)
    store, job = client.store, job_id("pay")
    definition = client.commands.job("pay").definition
    assert definition is not None

    def run() -> RunCreated:
        return Run.create(uuid4(), definition, 1, {}, "tester", client.clock.now(), client.clock.now())

    head = store.head()
    with pytest.raises(Moved) as moved:
        store.append_if({job: 2, job_id("nothing"): 0}, run(), run())
    assert moved.value.moved == {job}
    assert store.read(head) == []
    taken = run()
    store.append(taken)
    head = store.head()
    with pytest.raises(actorbatch.Conflict):
        store.append_if({job: 1}, run(), taken)  # the second event's version is taken: neither is written
    assert store.read(head) == []
    store.append_if({job: 1, job_id("nothing"): 0}, run(), run())
    assert len(store.read(head)) == 2  # (PostgreSQL's positions may skip those the refused appends took)


def test_a_bulk_submit_makes_the_events_one_by_one_creates_would(client: actorbatch.Client) -> None:
    client.add_job(FIRST)
    definition = client.commands.job("pay").definition
    assert definition is not None
    now, ids = client.clock.now(), [uuid4() for _ in range(3)]
    due_at, params = now + timedelta(hours=1), [{"i": i} for i in range(3)]
    many = Run.create_many(iter(ids), definition, 1, params, due_at, "ann", now)
    one_by_one = [Run.create(i, definition, 1, p, "ann", due_at, now) for i, p in zip(ids, params, strict=True)]
    assert many == one_by_one
    assert many[0].definition is many[2].definition  # one snapshot, shared
    client.store.append(*many)
    assert [client.store.load(Run, i).params for i in ids] == [{"i": 0}, {"i": 1}, {"i": 2}]  # type: ignore[union-attr]


def test_a_bulk_encoding_packs_the_shared_definition_once_and_gives_the_same_bytes(client: actorbatch.Client
                                                                                   ) -> None:
    client.add_job(FIRST)
    definition = client.commands.job("pay").definition
    assert definition is not None
    now = client.clock.now()
    many = Run.create_many(random_ids(50), definition, 1, [{"i": i, "s": "x" * i} for i in range(50)], now, "ann",
                           now)
    mapper = client.store._mapper
    assert mapper.encode_many(many) == [mapper.encode(e) for e in many]
    assert len({id(e.definition) for e in many}) == 1
    assert [mapper.to_domain_event(mapper.to_stored_event(e)) for e in many] == many
    # Events not of the first two's shape are packed whole: another class, another shared value, another user
    # (an equal string that is not the same object), more fields; a due time that differs from the second on.
    later = [Run.create(uuid4(), definition, 1, {"n": n}, "ann", now + timedelta(seconds=n), now,
                        snapshot=many[0].definition) for n in range(3)]
    odd = [Run.create(uuid4(), definition, 1, {}, "".join(["a", "nn"]), now, now, snapshot=many[0].definition),
           Run.create(uuid4(), definition, 1, {}, "ann", now, now), RunCancelled(
               originator_id=uuid4(), originator_version=2, timestamp=now, user="ann")]
    vars(odd[0])["extra"] = 1
    for events in (many[:2] + odd + many[2:5], later, [many[0], later[1], *many[1:3]]):
        assert mapper.encode_many(events) == [mapper.encode(e) for e in events]
