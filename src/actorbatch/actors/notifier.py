"""The notifier actor: the pykka shell around NotifyCore, and the threads that send its e-mails and webhooks.

Sending happens on a small thread pool, never in the actor: a slow SMTP server delays only its own deliveries.
Each outcome comes back as a Delivered message, and the core records it.
"""

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import pykka

from actorbatch.actors.messages import Busy, Drain, Observed, Tick
from actorbatch.actors.outages import rides_out_outages
from actorbatch.actors.problems import ProblemLog
from actorbatch.actors.senders import SmtpSettings, post_webhook, send_email
from actorbatch.actors.timer import Timer
from actorbatch.clock import Clock
from actorbatch.domain.alerts import email_text
from actorbatch.domain.notifications import Notification, RetryPolicy, notification_ids
from actorbatch.domain.quarantine import describe
from actorbatch.domain.runs import Run
from actorbatch.domain.servers import Server
from actorbatch.node.notify import MAX_IN_FLIGHT, Delivered, Delivery, Directory, NotifyCore
from actorbatch.projections.documents import run_detail
from actorbatch.projections.views import Views
from actorbatch.store.eventstore import EventStore

log = logging.getLogger(__name__)
NotifierSeed = tuple[list[Run], list[Notification], list[Server]]  # active runs, unfinished deliveries, servers


class Profiles:
    """The users' e-mail addresses, from the read models."""

    def __init__(self, views: Views) -> None:
        self.views = views

    def email(self, user: str) -> str | None:
        profile = self.views.user(user)
        return profile.email if profile is not None else None


class Notifier(pykka.ThreadingActor):
    def __init__(self, name: str, store: EventStore, clock: Clock, timer: Timer, directory: Directory,
                 smtp: SmtpSettings | None, lease_timeout_s: float, policy: RetryPolicy,
                 problems: ProblemLog, seeded: NotifierSeed) -> None:
        super().__init__()
        self.store, self.clock, self.timer, self.smtp = store, clock, timer, smtp
        channels = ("webhook", "email") if smtp is not None else ("webhook",)
        self.core = NotifyCore(name, store, self, directory, channels, lease_timeout_s, policy,
                               lambda: self._read_at, problems.report)
        self.core.seed(*seeded)
        self._pool = ThreadPoolExecutor(MAX_IN_FLIGHT, thread_name_prefix="actorbatch-notify")
        self._read_at: datetime | None = None
        self._again = False

    @rides_out_outages
    def on_receive(self, message: Any) -> Any:
        core = self.core
        if isinstance(message, Observed):
            if message.read_at is not None:
                self._read_at = message.read_at
            core.observed(message.events, self.clock.now())
        elif isinstance(message, Delivered):
            core.delivered(message)
        elif isinstance(message, Tick):
            core.tick()
        elif isinstance(message, Drain):
            core.drain()
        elif isinstance(message, Busy):
            return core.busy
        if self._again and self.actor_inbox.empty():
            self._again = False
            core.step(self.clock.now())
        return None

    def on_stop(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ---- the core's outbox ----

    def deliver(self, delivery: Delivery) -> None:
        self._pool.submit(self._send, delivery)

    def wake_at(self, when: datetime) -> None:
        self.timer.at(when, self.actor_ref, Tick())

    def again(self) -> None:
        self._again = True

    # ---- on a sending thread ----

    def _send(self, delivery: Delivery) -> None:
        n = delivery.notification
        try:
            if n.channel == "email":
                assert self.smtp is not None
                subject, body = email_text(n.job, str(n.run_id), n.run_status, n.failed, n.more_failed,
                                           n.started_at, n.ended_at)
                send_email(self.smtp, n.recipient, subject, body, str(n.id))
            else:
                post_webhook(n.recipient, self._document(n), str(n.id))
            error = None
        except Exception as failure:  # noqa: BLE001 - whatever went wrong is recorded, and retried
            error = describe(failure)
            log.info("%s to %s failed: %s", n.channel, n.recipient, error)
        try:
            self.actor_ref.tell(Delivered(n.id, delivery.attempt, error))
        except pykka.ActorDeadError:
            log.warning("%s to %s ended after the server stopped; not recorded", n.channel, n.recipient)

    def _document(self, notification: Notification) -> dict[str, Any]:
        """The run as `run show --json` shows it, read from the log (the read models may lag)."""
        run = self.store.load(Run, notification.run_id)
        assert run is not None and run.definition is not None
        ids = notification_ids(run.id, run.user, run.definition.notify)
        notifications = [n for n in (self.store.load(Notification, i) for i in ids) if n is not None]
        return run_detail(run, self.clock.now(), notifications)
