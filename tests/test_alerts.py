"""Alerts: the policy, the notification aggregate, the notifier core racing on one log, and messages per user."""

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

import actorbatch
from actorbatch.domain.alerts import alerts_on, email_text, message_text
from actorbatch.domain.events import Event
from actorbatch.domain.jobfile import parse_job
from actorbatch.domain.notifications import (
    DeliveryClaimed,
    DeliveryLost,
    DeliverySent,
    Notification,
    NotificationQueued,
    RetryPolicy,
)
from actorbatch.domain.runs import Run
from actorbatch.errors import InvalidJob
from actorbatch.node.notify import Delivered, Delivery, NotifyCore
from actorbatch.store.eventstore import EventStore
from tests.conftest import T0

POLICY = RetryPolicy(first_delay_s=10, max_delay_s=60, tries=3)


@pytest.mark.parametrize(("policy", "status", "announced"), [
    ("always", "succeeded", True), ("always", "failed", True), ("on-error", "succeeded", False),
    ("on-error", "failed", True), ("on-error", "cancelled", True), ("never", "failed", False)])
def test_the_alerts_policy_says_which_completed_runs_are_announced(policy: str, status: str, announced: bool) -> None:
    assert alerts_on(policy, status) is announced


def test_the_texts_name_the_job_run_status_failed_tasks_times_and_the_command() -> None:
    run_id = "0b6f7a5e-1111-4222-8333-444455556666"
    failed = [("load", "exit status 3")]
    assert message_text("etl", run_id, "failed", failed, 0) == f"etl failed: run {run_id}; failed: load (exit status 3)"
    subject, body = email_text("etl", run_id, "failed", failed, 2, T0, T0 + timedelta(seconds=90))
    assert subject == "[actorbatch] etl failed (run 0b6f7a5e)"
    for line in ("Job:      etl", f"Run:      {run_id}", "Status:   failed", "Started:  2026-11-02 09:00:00 UTC",
                 "Ended:    2026-11-02 09:01:30 UTC", "Duration: 90.0 s", "  load: exit status 3",
                 "  ... and 2 more", f"Show the run: actorbatch run show {run_id}"):
        assert line in body.splitlines()


@pytest.mark.parametrize(("notify", "error"), [
    ("http://h/", "notify must be a list"), (["ftp://h/x"], "expected an http:// or https:// URL"),
    (["https://user:secret@h/"], "may not hold a user or password"), (["http://h:70000/"], "invalid port"),
    (["http://h/", "http://h/"], "names 'http://h/' twice"), (["http://h/ x"], "expected an http")])
def test_webhook_urls_are_checked_when_the_job_is_read(notify: object, error: str) -> None:
    with pytest.raises(InvalidJob, match=error):
        parse_job({"name": "j", "notify": notify, "tasks": [{"name": "t", "run": "m:f"}]})


# ---- the notification aggregate ----

def queued(channel: str = "webhook") -> Notification:
    run = Run()
    run.apply(Run.create(uuid4(), parse_job({"name": "j", "tasks": [{"name": "t", "run": "m:f"}]}), 1, {}, "alice",
                         T0, T0))
    notification = Notification()
    from actorbatch.domain.alerts import outcome

    notification.apply(Notification.queue(outcome(run, "failed"), channel, "http://h/", "http://h/", T0))
    return notification


def test_a_failed_delivery_is_retried_with_backoff_then_given_up() -> None:
    n, at = queued(), T0
    for attempt, delay_s in ((1, 10), (2, 20)):
        n.apply(n.claim("s1", at, 30))
        failed = n.finish(attempt, at, "HTTP 500", POLICY)
        assert failed is not None and failed.retry_at == at + timedelta(seconds=delay_s)
        n.apply(failed)
        assert (n.status, n.error) == ("retrying", "HTTP 500")
        assert not n.claimable(at + timedelta(seconds=delay_s - 1)) and n.claimable(at + timedelta(seconds=delay_s))
        at += timedelta(seconds=delay_s)
    n.apply(n.claim("s1", at, 30))
    last = n.finish(3, at, "HTTP 503", POLICY)
    assert last is not None and last.retry_at is None
    n.apply(last)
    assert (n.status, n.error, n.claimable(T0 + timedelta(days=1))) == ("failed", "HTTP 503", False)


def test_a_lost_delivery_is_never_sent_again_but_a_late_outcome_is_kept() -> None:
    n = queued()
    n.apply(n.claim("s1", T0, 30))
    assert n.expire(T0 + timedelta(seconds=29), T0 + timedelta(seconds=30)) is None
    lost = n.expire(T0 + timedelta(seconds=31), T0 + timedelta(seconds=30))
    assert isinstance(lost, DeliveryLost)
    n.apply(lost)
    assert n.status == "failed" and "outcome unknown" in (n.error or "") and not n.claimable(T0 + timedelta(days=1))
    late = n.finish(1, T0, None, POLICY)
    assert isinstance(late, DeliverySent)
    n.apply(late)
    assert (n.status, n.error) == ("sent", None)
    assert n.finish(1, T0, None, POLICY) is None  # recorded once


def test_a_message_is_delivered_by_being_queued_and_read_once() -> None:
    n = queued("message")
    assert n.status == "sent" and not n.claimable(T0)
    read = n.mark_read("alice", T0)
    assert read is not None
    n.apply(read)
    assert n.read and n.mark_read("alice", T0) is None
    assert Notification.from_dict(n.to_dict()).to_dict() == n.to_dict()


# ---- the notifier core: two servers racing on one log ----

class Outbox:
    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []

    def deliver(self, delivery: Delivery) -> None:
        self.deliveries.append(delivery)

    def wake_at(self, when: datetime) -> None:
        pass

    def again(self) -> None:
        pass


class Addresses:
    def email(self, user: str) -> str | None:
        return f"{user}@example.com"


@pytest.fixture
def store() -> Iterator[EventStore]:
    s = EventStore("memory://", create=True)
    yield s
    s.close()


def core(store: EventStore, name: str, outbox: Outbox, now: list[datetime]) -> NotifyCore:
    return NotifyCore(name, store, outbox, Addresses(), ("email", "webhook"), 30, POLICY, lambda: now[0],
                      lambda problems: None)


def run_events(alerts: str, fail: bool) -> list[Event]:
    job = parse_job({"name": "j", "alerts": alerts, "notify": ["http://127.0.0.1:9/hook"],
                     "tasks": [{"name": "t", "run": "m:f"}]})
    run = Run()
    events: list[Event] = []
    for decide in (lambda: Run.create(uuid4(), job, 1, {}, "alice", T0, T0),
                   lambda: run.claim("t", "s1", T0, 30),
                   lambda: run.finish("t", 1, T0, exit_status="exit 1" if fail else None)):
        event = decide()
        run.apply(event)  # type: ignore[arg-type]
        events.append(event)
    return events


def everything(store: EventStore) -> list[Event]:
    return [event for _, event in store.read(0, 10_000)]


@pytest.mark.parametrize(("alerts", "fail", "channels"), [
    ("on-error", True, ["email", "message", "webhook"]), ("on-error", False, []),
    ("always", False, ["email", "message", "webhook"]), ("never", True, [])])
def test_racing_notifiers_queue_each_notification_once_and_deliver_it_once(
        store: EventStore, alerts: str, fail: bool, channels: list[str]) -> None:
    now = [T0]
    outboxes = [Outbox(), Outbox()]
    cores = [core(store, f"s{i}", outboxes[i], now) for i in range(2)]
    events = run_events(alerts, fail)
    store.append(*events)
    for c in cores:
        c.observed(events, T0)
    for c in cores:
        c.step(T0)
    recorded = everything(store)
    queued_events = [e for e in recorded if isinstance(e, NotificationQueued)]
    assert sorted(e.channel for e in queued_events) == channels
    assert len({e.originator_id for e in queued_events}) == len(queued_events)
    for c in cores:  # each hears the other's events
        c.observed(recorded, T0)
        c.step(T0)
    deliveries = [d for o in outboxes for d in o.deliveries]
    assert sorted(d.notification.channel for d in deliveries) == [c for c in channels if c != "message"]
    claims = [e for e in everything(store) if isinstance(e, DeliveryClaimed)]
    assert len(claims) == len(deliveries)


def test_a_delivery_whose_holder_stops_responding_is_lost_not_resent(store: EventStore) -> None:
    now = [T0]
    outboxes = [Outbox(), Outbox()]
    a, b = (core(store, f"s{i}", outboxes[i], now) for i in range(2))
    events = run_events("on-error", fail=True)
    store.append(*events)
    a.observed(events, T0)
    a.step(T0)
    b.observed(everything(store), T0)
    assert len(outboxes[0].deliveries) == 2 and not outboxes[1].deliveries  # a claimed the e-mail and the webhook
    later = T0 + timedelta(seconds=31)
    now[0] = later
    b.step(later)
    lost = [e for e in everything(store) if isinstance(e, DeliveryLost)]
    assert len(lost) == 2 and not outboxes[1].deliveries  # b reaped them, and sends nothing
    a.observed(everything(store), later)
    for delivery in outboxes[0].deliveries:  # a's sends went through after all: recorded late, as sent
        a.delivered(Delivered(delivery.notification.id, delivery.attempt, None))
    a.step(later)
    finals = {n: store.load(Notification, n) for n in (d.notification.id for d in outboxes[0].deliveries)}
    assert all(n is not None and n.status == "sent" for n in finals.values())


def test_a_failed_delivery_is_claimed_again_when_its_backoff_ends(store: EventStore) -> None:
    now = [T0]
    outbox = Outbox()
    a = core(store, "s1", outbox, now)
    events = run_events("on-error", fail=True)
    store.append(*events)
    a.observed(events, T0)
    a.step(T0)
    for delivery in outbox.deliveries:
        a.delivered(Delivered(delivery.notification.id, delivery.attempt, "connection refused"))
    a.step(T0)
    assert len(outbox.deliveries) == 2
    a.step(T0 + timedelta(seconds=9))
    assert len(outbox.deliveries) == 2
    a.step(T0 + timedelta(seconds=10))
    assert [d.attempt for d in outbox.deliveries] == [1, 1, 2, 2]


# ---- through the API: messages are per user ----

def test_each_user_reads_only_their_own_messages_and_reading_marks_them_read(db_url: str) -> None:
    with actorbatch.connect(db_url, user="alice") as alice, actorbatch.connect(db_url, user="bob") as bob:
        alice.add_job(parse_job({"name": "boom", "tasks": [{"name": "t", "run": "actorbatch.examples:fail"}]}))
        alice.add_job(parse_job({"name": "fine", "alerts": "always",
                                 "tasks": [{"name": "t", "run": "actorbatch.examples:noop"}]}))
        with actorbatch.Server(alice, name="s", threads=2):
            runs = [alice.run_job("boom"), bob.run_job("fine"), bob.run_job("boom")]
            for run in runs:
                alice.wait(run, timeout=30)
            deadline = time.monotonic() + 20
            while len(bob.views.messages("bob")) < 2 and time.monotonic() < deadline:
                bob.views.catch_up()
                time.sleep(0.05)
        mine = alice.messages()
        assert [(m["run_id"], m["job"], m["status"], m["read"]) for m in mine] == [(str(runs[0]), "boom", "failed",
                                                                                    False)]
        assert set(mine[0]) == {"at", "run_id", "job", "status", "read", "text"}
        assert mine[0]["text"].startswith(f"boom failed: run {runs[0]}; failed: t (")
        theirs = bob.messages()
        assert sorted(m["run_id"] for m in theirs) == sorted(str(r) for r in runs[1:])
        assert alice.messages() == [] and bob.messages() == []
        assert [m["read"] for m in bob.messages(all_messages=True)] == [True, True]
        detail: dict[str, Any] = alice.run(runs[0])
        assert detail["notifications"] == [{"channel": "message", "recipient": "alice", "status": "sent",
                                             "error": None, "attempts": 0}]
        alice.rebuild_projections()
        assert [m["read"] for m in bob.messages(all_messages=True)] == [True, True]
