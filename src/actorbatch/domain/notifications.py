"""The Notification aggregate: one announcement of one completed run, to one recipient, on one channel.

Its id is `uuid5(run id, "notification:CHANNEL:KEY")` (KEY: the user for messages and e-mails, the URL for
webhooks), so servers that race to queue it write the same version 1 of the same id: the store keeps one. A system
message is in its recipient's inbox once queued; an e-mail or a webhook is delivered like a task is run: an attempt
is a `notification.claimed` at the notification's next version, leased to one server (extended by its heartbeats),
and only the server whose claim was recorded sends. An attempt whose holder stopped responding is `lost` and ends
the notification `failed`: it may have been sent, and sending it again could send it twice. A failed attempt (the
endpoint said no, or could not be reached) is retried with backoff, up to `RetryPolicy.tries` attempts in all.
"""

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

from actorbatch.domain.alerts import Outcome
from actorbatch.domain.events import Event
from actorbatch.frozen import frozen

CHANNELS = ("message", "email", "webhook")
DELIVERED = ("email", "webhook")  # channels a server delivers; a message is delivered by being queued
MAX_ERROR_CHARS = 500


def notification_id(run_id: UUID, channel: str, key: str) -> UUID:
    return uuid5(run_id, f"notification:{channel}:{key}")


@frozen
class RetryPolicy:
    """How failed deliveries are retried: after `first_delay_s`, doubling, at most `max_delay_s` apart, and
    `tries` attempts in all before the notification is given up as `failed`."""

    first_delay_s: float = 30.0
    max_delay_s: float = 3600.0
    tries: int = 8

    def delay_s(self, failures: int) -> float:
        return float(min(self.first_delay_s * 2 ** (failures - 1), self.max_delay_s))


@frozen
class NotificationEvent(Event):
    """An event of the Notification aggregate."""


@frozen
class NotificationQueued(NotificationEvent):
    ACTION = "notification.queued"
    run_id: UUID
    job: str
    channel: str
    recipient: str  # the user (message), the address (email) or the URL (webhook)
    owner: str  # whose run it was: the user the message or e-mail is for
    run_status: str
    failed: tuple[tuple[str, str], ...]
    more_failed: int
    started_at: datetime | None
    ended_at: datetime | None


@frozen
class DeliveryClaimed(NotificationEvent):
    """Attempt `attempt` is leased to `server` until `lease_until` (extended by its heartbeats)."""

    ACTION = "notification.claimed"
    attempt: int
    server: str
    lease_until: datetime


@frozen
class DeliverySent(NotificationEvent):
    ACTION = "notification.sent"
    attempt: int


@frozen
class DeliveryFailed(NotificationEvent):
    """The attempt failed with `error`; retried at `retry_at`, or given up if None."""

    ACTION = "notification.failed"
    attempt: int
    error: str
    retry_at: datetime | None


@frozen
class DeliveryLost(NotificationEvent):
    """The holder stopped renewing its lease mid-delivery: whether it was sent is unknown, so it is not retried."""

    ACTION = "notification.lost"
    attempt: int
    server: str


@frozen
class MessageRead(NotificationEvent):
    ACTION = "message.read"
    reader: str


_FIELDS = ("id", "version", "run_id", "job", "channel", "recipient", "owner", "run_status", "failed", "more_failed",
           "started_at", "ended_at", "queued_at", "status", "attempt", "server", "claimed_at", "lease_until",
           "not_before", "error", "lost", "sent_at", "read")


class Notification:
    """Where one notification stands: `queued`, `sending`, `retrying`, `sent` or `failed`."""

    def __init__(self) -> None:
        self.id = UUID(int=0)
        self.version = 0
        self.run_id = UUID(int=0)
        self.job = self.channel = self.recipient = self.owner = self.run_status = ""
        self.failed: tuple[tuple[str, str], ...] = ()
        self.more_failed = 0
        self.started_at: datetime | None = None
        self.ended_at: datetime | None = None
        self.queued_at: datetime | None = None
        self.status = "queued"
        self.attempt = 0
        self.server: str | None = None
        self.claimed_at: datetime | None = None
        self.lease_until: datetime | None = None
        self.not_before: datetime | None = None
        self.error: str | None = None
        self.lost = False  # the current attempt's holder stopped responding: sent or not, nobody knows
        self.sent_at: datetime | None = None
        self.read = False

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in _FIELDS}
        data["failed"] = [list(pair) for pair in self.failed]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Notification":
        notification = cls()
        for name in _FIELDS:
            setattr(notification, name, data[name])
        notification.failed = tuple((task, exit_status) for task, exit_status in data["failed"])
        return notification

    # ---- decisions: return the event, change nothing ----

    @staticmethod
    def queue(outcome: Outcome, channel: str, recipient: str, key: str, now: datetime) -> NotificationQueued:
        run_id = UUID(outcome.run_id)
        return NotificationQueued(
            originator_id=notification_id(run_id, channel, key), originator_version=1, timestamp=now, run_id=run_id,
            job=outcome.job, channel=channel, recipient=recipient, owner=outcome.user, run_status=outcome.status,
            failed=outcome.failed, more_failed=outcome.more_failed, started_at=outcome.started_at,
            ended_at=outcome.ended_at)

    def claimable(self, now: datetime) -> bool:
        return self.channel in DELIVERED and self.status in ("queued", "retrying") and (
            self.not_before is None or self.not_before <= now)

    def claim(self, server: str, now: datetime, lease_timeout_s: float) -> DeliveryClaimed:
        assert self.claimable(now), f"notification {self.id} is {self.status}"
        return DeliveryClaimed(originator_id=self.id, originator_version=self.version + 1, timestamp=now,
                               attempt=self.attempt + 1, server=server,
                               lease_until=now + timedelta(seconds=lease_timeout_s))

    def finish(self, attempt: int, now: datetime, error: str | None, policy: RetryPolicy
               ) -> DeliverySent | DeliveryFailed | None:
        """Record attempt `attempt`'s outcome (`error` None: sent); None if it is not the current attempt."""
        if attempt != self.attempt or not (self.status == "sending" or self.lost):
            return None  # another attempt's, or recorded already
        common: dict[str, Any] = {"originator_id": self.id, "originator_version": self.version + 1,
                                  "timestamp": now, "attempt": attempt}
        if error is None:
            return DeliverySent(**common)
        retry_at = now + timedelta(seconds=policy.delay_s(attempt)) if attempt < policy.tries else None
        return DeliveryFailed(**common, error=error[:MAX_ERROR_CHARS], retry_at=retry_at)

    def expire(self, now: datetime, lease_end: datetime) -> DeliveryLost | None:
        """The running attempt is lost if its lease (as its holder's heartbeats extended it) ended before `now`."""
        if self.status != "sending" or lease_end >= now:
            return None
        assert self.server is not None
        return DeliveryLost(originator_id=self.id, originator_version=self.version + 1, timestamp=now,
                            attempt=self.attempt, server=self.server)

    def mark_read(self, reader: str, now: datetime) -> MessageRead | None:
        if self.read or self.channel != "message":
            return None
        return MessageRead(originator_id=self.id, originator_version=self.version + 1, timestamp=now, reader=reader)

    # ---- the fold ----

    def apply(self, event: NotificationEvent) -> None:
        assert event.originator_version == self.version + 1, (
            f"notification {event.originator_id}: event v{event.originator_version} after v{self.version}")
        self.id, self.version = event.originator_id, event.originator_version
        if isinstance(event, NotificationQueued):
            for name in ("run_id", "job", "channel", "recipient", "owner", "run_status", "failed", "more_failed",
                         "started_at", "ended_at"):
                setattr(self, name, getattr(event, name))
            self.failed = tuple((task, exit_status) for task, exit_status in event.failed)
            self.queued_at = event.timestamp
            if event.channel not in DELIVERED:
                self.status, self.sent_at = "sent", event.timestamp
        elif isinstance(event, DeliveryClaimed):
            self.status, self.attempt, self.server = "sending", event.attempt, event.server
            self.claimed_at, self.lease_until, self.not_before = event.timestamp, event.lease_until, None
            self.lost = False
        elif isinstance(event, DeliverySent):
            self.status, self.error, self.sent_at, self.lost = "sent", None, event.timestamp, False
            self.server = self.lease_until = None
        elif isinstance(event, DeliveryFailed):
            self.error, self.server, self.lease_until, self.lost = event.error, None, None, False
            self.status = "failed" if event.retry_at is None else "retrying"
            self.not_before = event.retry_at
        elif isinstance(event, DeliveryLost):
            self.status, self.server, self.lease_until, self.lost = "failed", None, None, True
            self.error = (f"outcome unknown: server {event.server} stopped responding while delivering; not "
                          "retried, so that it is never sent twice")
        elif isinstance(event, MessageRead):
            self.read = True

    def summary(self) -> dict[str, Any]:
        """The `notifications` entry of `run show --json`."""
        return {"channel": self.channel, "recipient": self.recipient, "status": self.status, "error": self.error,
                "attempts": self.attempt}


def sort_key(notification: Notification) -> tuple[int, str, str]:
    return CHANNELS.index(notification.channel) if notification.channel in CHANNELS else 9, \
        notification.recipient, str(notification.id)


def summaries(notifications: Sequence[Notification]) -> list[dict[str, Any]]:
    return [n.summary() for n in sorted(notifications, key=sort_key)]


def notification_ids(run_id: UUID, user: str, webhooks: Sequence[str]) -> list[UUID]:
    """Every id a notification of this run can have: its user's message and e-mail, one per webhook."""
    return [notification_id(run_id, "message", user), notification_id(run_id, "email", user),
            *(notification_id(run_id, "webhook", url) for url in webhooks)]
