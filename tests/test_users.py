"""Users, privileges and identity (DESIGN §3): profiles and tokens as events, privileges checked in one place, the
store open until the first admin grant, refusals that write nothing but their audit record; on SQLite and on
PostgreSQL."""

import json
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

import actorbatch
from actorbatch.cli.app import app
from actorbatch.domain.jobfile import parse_job
from actorbatch.errors import InvalidJob, PermissionDenied
from actorbatch.store.identity import os_user

runner = CliRunner()
JOB = parse_job({"name": "invoice-run", "tasks": [{"name": "post", "run": "actorbatch.examples:noop"}]})


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest) -> str:
    """A fresh store of each kind."""
    fixture = "db_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
def admin(store: str) -> Iterator[actorbatch.Client]:
    """The user the store vouches for (the OS user, or the database role), made admin: the store is closed."""
    with actorbatch.connect(store) as me:
        me.grant(me.user, ["admin"])
        yield me


def log_size(client: actorbatch.Client) -> int:
    return client.store.head()


def test_the_acting_user_is_the_one_the_store_vouches_for(store: str) -> None:
    with actorbatch.connect(store) as me:
        expected = os_user() if store.startswith("sqlite") else "postgres"
        assert me.user == me.identity == expected


def test_profiles_and_privileges_are_events_listed_and_rebuilt(admin: actorbatch.Client, store: str) -> None:
    admin.set_email("alice", "alice@example.com")
    admin.grant("alice", ["job.run", "invoice.post"])
    admin.grant("bob", ["job.manage"])
    admin.revoke("alice", ["invoice.post"])
    listed = admin.users()
    assert {u["name"]: u for u in listed}["alice"] == {"name": "alice", "privileges": ["job.run"],
                                                       "email": "alice@example.com"}
    assert {u["name"]: u["privileges"] for u in listed}["bob"] == ["job.manage"]
    assert admin.user_profile("alice")["email"] == "alice@example.com"
    assert admin.user_profile("nobody-yet") == {"name": "nobody-yet", "privileges": [], "email": None}
    admin.rebuild_projections()
    assert admin.users() == listed
    actions = [(e["user"], e["action"], e["subject"]) for e in admin.audit()]
    assert (admin.user, "user.granted", "alice") in actions and (admin.user, "access.closed", "") in actions


def test_the_store_is_open_until_the_first_admin_grant(store: str) -> None:
    with actorbatch.connect(store, user="mallory") as mallory:  # open: --user is honoured, everything allowed
        mallory.add_job(JOB)
        mallory.grant("alice", ["admin"])
        with pytest.raises(PermissionDenied, match=r"^permission denied: mallory lacks job.manage$"):
            mallory.remove_job("invoice-run")
        with pytest.raises(PermissionDenied, match=r"^permission denied: mallory lacks admin$"):
            mallory.grant("mallory", ["admin"])
    with pytest.raises(PermissionDenied, match=f"^permission denied: {_identity(store)} lacks admin$"):
        actorbatch.connect(store, user="alice")  # the vouched-for user is not admin: --user is not honoured


def test_refusals_write_nothing_but_their_audit_record(admin: actorbatch.Client, store: str) -> None:
    admin.add_job(JOB)
    run_id = admin.run_job("invoice-run")
    with actorbatch.connect(store, user="bob", clock=admin.clock) as bob:
        attempts = [lambda: bob.add_job(JOB, replace=True), lambda: bob.remove_job("invoice-run", force=True),
                    lambda: bob.run_job("invoice-run"), lambda: bob.cancel(run_id),
                    lambda: bob.unschedule("invoice-run"), lambda: bob.grant("bob", ["admin"]),
                    lambda: bob.set_email("alice", "bob@example.com"), lambda: bob.issue_token("alice")]
        for attempt in attempts:
            before = log_size(admin)
            with pytest.raises(PermissionDenied, match=r"^permission denied: bob lacks "):
                attempt()
            new = admin.store.read(before)
            assert [e.action for _, e in new] == ["access.denied"], new
        denied = admin.audit(user="bob")
        assert [e["action"] for e in denied] == ["access.denied"] * len(attempts)
        assert denied[0]["subject"] == "job.replaced invoice-run: lacks job.manage"
        assert [e["subject"] for e in admin.audit(job="invoice-run")][-2] == \
            "run.cancelled " + str(run_id) + ": lacks run.cancel"
        assert admin.run(run_id)["status"] != "cancelled"
        assert admin.users() == [{"name": admin.user, "privileges": ["admin"], "email": None}]


def test_granted_users_succeed_and_everyone_cancels_their_own_runs(admin: actorbatch.Client, store: str) -> None:
    admin.add_job(JOB)
    admin.grant("alice", ["job.run"])
    admin.grant("carol", ["run.cancel"])
    with actorbatch.connect(store, user="alice") as alice, actorbatch.connect(store, user="carol") as carol:
        own = alice.run_job("invoice-run")
        alice.cancel(own)
        assert alice.run(own)["status"] == "cancelled"
        other = admin.run_job("invoice-run")
        with pytest.raises(PermissionDenied, match=r"alice lacks run.cancel"):
            alice.cancel(other)
        carol.cancel(other)
        with pytest.raises(PermissionDenied, match=r"carol lacks job.run"):
            carol.run_job("invoice-run")
        admin.revoke("alice", ["job.run"])
        with pytest.raises(PermissionDenied, match=r"alice lacks job.run"):
            alice.run_job("invoice-run")
        who = [(e["user"], e["action"]) for e in admin.audit(job="invoice-run")]
        assert who[:5] == [(admin.user, "job.added"), ("alice", "run.created"), ("alice", "run.cancelled"),
                           (admin.user, "run.created"), ("alice", "access.denied")]
        assert ("carol", "run.cancelled") in who


def test_tokens_are_shown_once_kept_hashed_and_replaced(admin: actorbatch.Client, store: str) -> None:
    first = admin.issue_token("alice")  # an admin issues tokens for others
    assert admin.token_user(first) == "alice"
    raw = b"".join(bytes(n.state) for n in admin.store.read_raw(0, 1000))
    assert first.rpartition(".")[2].encode() not in raw  # only a salted hash is stored
    with actorbatch.connect(store, user="alice") as alice:
        second = alice.issue_token()  # one's own needs no privilege
        assert alice.token_user(second) == "alice"
        assert alice.token_user(first) is None  # revoked by the new one
        with pytest.raises(PermissionDenied, match=r"alice lacks admin"):
            alice.issue_token("bob")
    for bad in ("", "no-dot", "%%%.x", first + "x", second.replace(".", ".x", 1)):
        assert admin.token_user(bad) is None


def test_bad_values_are_refused_before_anything_is_written(admin: actorbatch.Client) -> None:
    before = log_size(admin)
    for attempt in (lambda: admin.set_email("alice", "not an address"), lambda: admin.grant("alice", ["bad name"]),
                    lambda: admin.grant("alice", []), lambda: admin.grant("", ["job.run"])):
        with pytest.raises(InvalidJob):
            attempt()
    assert log_size(admin) == before


def test_the_user_command_line(store: str) -> None:
    def cli(*args: str) -> tuple[int, str, str]:
        result = runner.invoke(app, ["--db", store, *args])
        return result.exit_code, result.stdout, result.stderr

    me = cli("user", "list", "--json")
    assert me == (0, "[]\n", "")
    assert cli("user", "set", "alice", "--email", "alice@example.com")[0] == 0
    assert cli("user", "grant", "alice", "job.run", "invoice.post")[0] == 0
    code, out, _ = cli("user", "token", "alice")
    assert code == 0 and len(out.strip()) > 40
    assert json.loads(cli("user", "list", "--json")[1]) == [
        {"name": "alice", "privileges": ["invoice.post", "job.run"], "email": "alice@example.com"}]
    assert cli("user", "set", "alice", "--email", "nope")[0] == 2
    assert cli("user", "grant", "alice", "no way")[0] == 2
    assert cli("user", "grant", "alice", "admin")[0] == 0  # closes the store: the vouched-for user is not admin
    code, _, err = cli("--user", "mallory", "job", "list")
    assert (code, err) == (1, f"permission denied: {_identity(store)} lacks admin\n")
    code, _, err = cli("user", "revoke", "alice", "admin")
    assert (code, err) == (1, f"permission denied: {_identity(store)} lacks admin\n")
    code, out, _ = cli("audit", "log", "--json")
    denied = [e for e in json.loads(out) if e["action"] == "access.denied"]
    assert [e["subject"] for e in denied] == ["--user mallory: lacks admin", "user.revoked alice: lacks admin"]


def _identity(store: str) -> str:
    return os_user() if store.startswith("sqlite") else "postgres"
