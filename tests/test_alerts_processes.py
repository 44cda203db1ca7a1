"""Alerts end to end: real `server start` processes, a real SMTP server (aiosmtpd) and a real webhook receiver, all
on 127.0.0.1; the store on SQLite, and for the race also on PostgreSQL."""

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import actorbatch
from actorbatch.domain.jobfile import parse_job
from tests.endpoints import REFUSED, Mailbox, Webhooks, free_port, smtp_server, webhook_server
from tests.processes import ROOT, start_server, stop, wait_for

pytestmark = pytest.mark.slow
FROM = "batch@example.com"


@pytest.fixture
def mailbox() -> Mailbox:
    return Mailbox()


@pytest.fixture
def smtp_port(mailbox: Mailbox) -> Iterator[int]:
    with smtp_server(mailbox) as port:
        yield port


@pytest.fixture
def hooks() -> Iterator[tuple[Webhooks, str]]:
    received = Webhooks()
    with webhook_server(received) as url:
        yield received, url


def smtp_env(port: int, mailbox: Mailbox, **more: str) -> dict[str, str]:
    return {"ACTORBATCH_SMTP_URL": f"smtp://{mailbox.user}:{mailbox.password}@127.0.0.1:{port}",
            "ACTORBATCH_SMTP_FROM": FROM, **more}


def cli(url: str, *args: str, user: str = "alice") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "actorbatch", "--db", url, "--user", user, *args],
                          capture_output=True, text=True, timeout=60, env={"PYTHONPATH": str(ROOT), "PATH": ""},
                          check=False)


def set_email(url: str, user: str, address: str) -> None:
    done = cli(url, "user", "set", user, "--email", address)
    assert done.returncode == 0, done.stderr


def add_job(client: actorbatch.Client, name: str, alerts: str, fail: bool, webhook: str) -> None:
    body = "actorbatch.examples:fail" if fail else "actorbatch.examples:noop"
    client.add_job(parse_job({"name": name, "alerts": alerts, "notify": [f"{webhook}/{name}"],
                              "tasks": [{"name": "work", "run": body, "params": {"message": "disk full"}}]}))


ANNOUNCED = 3  # notifications of an announced run: a message, an e-mail, a webhook


def settled(client: actorbatch.Client, run_id: Any, count: int = ANNOUNCED) -> dict[str, Any]:
    """The run once its `count` notifications are queued and none of them waits to be sent."""
    detail: dict[str, Any] = {}

    def done() -> bool:
        nonlocal detail
        detail = client.run(run_id)
        notifications = detail["notifications"]
        return len(notifications) == count and all(n["status"] in ("sent", "failed") for n in notifications)

    wait_for(done, 60, f"the notifications of run {run_id}")
    return detail


def test_each_alerts_policy_sends_one_e_mail_and_one_post_per_announced_run(
        db_url: str, tmp_path: Path, mailbox: Mailbox, smtp_port: int, hooks: tuple[Webhooks, str]) -> None:
    received, webhook = hooks
    set_email(db_url, "alice", "alice@example.com")
    server = start_server(db_url, "s1", log=tmp_path / "s1.log", env=smtp_env(smtp_port, mailbox))
    try:
        with actorbatch.connect(db_url, user="alice") as client:
            runs = {}
            for alerts in ("always", "on-error", "never"):
                for fail in (False, True):
                    name = f"{alerts}-{'fails' if fail else 'works'}"
                    add_job(client, name, alerts, fail, webhook)
                    runs[name] = client.run_job(name)
            announced = {"always-works", "always-fails", "on-error-fails"}
            details = {name: settled(client, client.wait(run, timeout=60)["id"], ANNOUNCED if name in announced else 0)
                       for name, run in runs.items()}
            details |= {name: client.run(run) for name, run in runs.items() if name not in announced}  # still none
    finally:
        assert stop(server) == 0
    for name, detail in details.items():
        channels = sorted((n["channel"], n["status"]) for n in detail["notifications"])
        expected = [("email", "sent"), ("message", "sent"), ("webhook", "sent")] if name in announced else []
        assert channels == expected, name
    mails = mailbox.to("alice@example.com")
    assert sorted(m["Subject"].split()[1] for m in mails) == sorted(announced)
    failed = next(m for m in mails if m["Subject"].startswith("[actorbatch] on-error-fails failed"))
    body = failed.get_payload()
    assert isinstance(body, str)
    run_id = str(runs["on-error-fails"])
    for line in ("Job:      on-error-fails", f"Run:      {run_id}", "Status:   failed",
                 f"Show the run: actorbatch run show {run_id}"):
        assert line in body.splitlines()
    assert "  work: RuntimeError: disk full" in body.splitlines()
    assert failed["From"] == FROM and mailbox.logins
    posts = {path.lstrip("/"): document for path, _, document in received.posts}
    assert sorted(posts) == sorted(announced)
    assert posts["on-error-fails"]["id"] == run_id and posts["on-error-fails"]["status"] == "failed"
    assert posts["on-error-fails"]["tasks"][0]["exit_status"] == "RuntimeError: disk full"
    assert mailbox.password not in (tmp_path / "s1.log").read_text()


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_two_racing_servers_send_exactly_one_e_mail_and_one_post_per_run(
        store: str, request: pytest.FixtureRequest, tmp_path: Path, mailbox: Mailbox, smtp_port: int,
        hooks: tuple[Webhooks, str]) -> None:
    url = request.getfixturevalue("db_url" if store == "sqlite" else "pg_url")
    received, webhook = hooks
    set_email(url, "alice", "alice@example.com")
    env = smtp_env(smtp_port, mailbox)
    servers = [start_server(url, f"s{i}", log=tmp_path / f"s{i}.log", env=env) for i in (1, 2)]
    try:
        with actorbatch.connect(url, user="alice") as client:
            add_job(client, "nightly", "on-error", True, webhook)
            runs = [client.run_job("nightly") for _ in range(8)]
            for run in runs:
                settled(client, client.wait(run, timeout=60)["id"])
    finally:
        assert [stop(s) for s in servers] == [0, 0]
    mailed = sorted(m["Subject"] for m in mailbox.to("alice@example.com"))
    assert mailed == sorted(f"[actorbatch] nightly failed (run {str(r)[:8]})" for r in runs)
    assert sorted(document["id"] for _, _, document in received.posts) == sorted(str(r) for r in runs)
    assert len({key for _, key, _ in received.posts}) == len(runs)


@pytest.mark.timeout(300)
def test_an_e_mail_waits_for_the_smtp_server_and_the_run_is_not_affected(
        db_url: str, tmp_path: Path, mailbox: Mailbox) -> None:
    port = free_port()  # nothing listens there yet
    set_email(db_url, "alice", "alice@example.com")
    env = smtp_env(port, mailbox, ACTORBATCH_NOTIFY_RETRY_DELAY="10s")
    server = start_server(db_url, "s1", log=tmp_path / "s1.log", env=env)
    try:
        with actorbatch.connect(db_url, user="alice") as client:
            client.add_job(parse_job({"name": "report", "tasks": [{"name": "t", "run": "actorbatch.examples:fail"}]}))
            run_id = client.run_job("report")
            assert client.wait(run_id, timeout=30)["status"] == "failed"

            def email() -> dict[str, Any]:
                return next((n for n in client.run(run_id)["notifications"] if n["channel"] == "email"), {})

            wait_for(lambda: email().get("status") == "retrying", 30, "a failed first attempt")
            assert "ConnectionRefusedError" in email()["error"]
            time.sleep(60)
            with smtp_server(mailbox, port):
                wait_for(lambda: bool(mailbox.to("alice@example.com")), 90, "the e-mail")
                wait_for(lambda: email()["status"] == "sent", 30, "the e-mail recorded as sent")
            detail, sent = client.run(run_id), email()
    finally:
        assert stop(server) == 0
    assert len(mailbox.to("alice@example.com")) == 1
    assert detail["status"] == "failed" and sent["attempts"] >= 3 and sent["error"] is None


def test_an_address_that_is_always_refused_ends_failed_with_its_last_error(
        db_url: str, tmp_path: Path, mailbox: Mailbox, smtp_port: int) -> None:
    set_email(db_url, "alice", REFUSED)
    env = smtp_env(smtp_port, mailbox, ACTORBATCH_NOTIFY_RETRY_DELAY="0.5s", ACTORBATCH_NOTIFY_TRIES="3")
    server = start_server(db_url, "s1", log=tmp_path / "s1.log", env=env)
    try:
        with actorbatch.connect(db_url, user="alice") as client:
            client.add_job(parse_job({"name": "report", "tasks": [{"name": "t", "run": "actorbatch.examples:fail"}]}))
            run_id = str(client.run_job("report"))
            client.wait(run_id, timeout=30)
            settled(client, run_id, 2)  # a message and an e-mail
    finally:
        assert stop(server) == 0
    shown = cli(db_url, "run", "show", run_id, "--json")
    assert shown.returncode == 0, shown.stderr
    email = next(n for n in json.loads(shown.stdout)["notifications"] if n["channel"] == "email")
    assert (email["recipient"], email["status"], email["attempts"]) == (REFUSED, "failed", 3)
    assert "550" in email["error"] and "no such mailbox" in email["error"]
    assert mailbox.password not in shown.stdout + (tmp_path / "s1.log").read_text()


def test_messages_json_lists_the_acting_users_messages_unread_first(db_url: str, tmp_path: Path) -> None:
    server = start_server(db_url, "s1", log=tmp_path / "s1.log")
    try:
        with actorbatch.connect(db_url, user="alice") as client:
            client.add_job(parse_job({"name": "report", "tasks": [{"name": "t", "run": "actorbatch.examples:fail"}]}))
            first = client.run_job("report")
            client.wait(first, timeout=30)
            wait_for(lambda: bool(client.views.catch_up() or client.views.messages("alice")), 30, "a message")
            assert json.loads(cli(db_url, "messages", "--json").stdout)[0]["read"] is False
            second = client.run_job("report")
            client.wait(second, timeout=30)
            wait_for(lambda: bool(client.views.catch_up() or client.views.messages("alice")), 30, "a message")
    finally:
        assert stop(server) == 0
    listed = json.loads(cli(db_url, "messages", "--all", "--json").stdout)
    assert [(m["run_id"], m["read"]) for m in listed] == [(str(second), False), (str(first), True)]
    assert json.loads(cli(db_url, "messages", "--json", user="bob").stdout) == []
    assert json.loads(cli(db_url, "messages", "--json").stdout) == []


def test_the_user_guide_example_announces_a_failed_run_by_message_and_webhook(
        db_url: str, tmp_path: Path, hooks: tuple[Webhooks, str]) -> None:
    example = (ROOT / "examples" / "nightly-export.toml").read_text()
    assert f"```toml\n{example}```" in (ROOT / "docs" / "user-guide.md").read_text()
    received, webhook = hooks
    job_file = tmp_path / "nightly-export.toml"
    job_file.write_text(example.replace("http://127.0.0.1:8085", webhook))
    assert cli(db_url, "job", "add", str(job_file)).returncode == 0
    run_id = cli(db_url, "job", "run", "nightly-export").stdout.strip()
    server = start_server(db_url, "s1", log=tmp_path / "s1.log")
    try:
        with actorbatch.connect(db_url, user="alice") as client:
            assert client.wait(run_id, timeout=60)["status"] == "failed"
            settled(client, run_id, 2)  # a message and a webhook
    finally:
        assert stop(server) == 0
    [(path, _, document)] = received.posts
    assert path == "/hooks/actorbatch" and document["id"] == run_id
    [shown] = json.loads(cli(db_url, "messages", "--json").stdout)
    assert shown["text"] == (f"nightly-export failed: run {run_id}; failed: export (RuntimeError: the warehouse "
                             "share is full)")
