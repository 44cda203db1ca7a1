"""The notifier's step: announce completed runs, and deliver e-mails and webhooks exactly as tasks are leased.

Every server runs one. Each hears the log, sees runs complete, and queues their notifications (version 1 of ids
derived from run, channel and recipient: racing servers queue each once). Deliveries are claimed like task attempts:
a claim at the notification's next version, one winner; only the winner sends, and records `sent` or `failed`
(retried with backoff). Nothing here touches the run: a delivery that fails, or a store that refuses a notification,
never changes a run's outcome.

To see runs complete without folding every run twice (the lease book folds them already, in another thread), it
folds only the runs that may alert: those of `always` jobs from their creation, and any other run from its first
failure or cancellation, loaded then from the log.
"""

import copy
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Protocol
from uuid import UUID

from actorbatch.behaviours.leasing import INSTANT, held_until, observe_server
from actorbatch.domain.alerts import Outcome, alerts_on, outcome
from actorbatch.domain.events import Event
from actorbatch.domain.notifications import (
    DELIVERED,
    DeliveryClaimed,
    DeliveryFailed,
    Notification,
    NotificationEvent,
    NotificationQueued,
    RetryPolicy,
)
from actorbatch.domain.quarantine import Quarantine, Quarantined
from actorbatch.domain.runs import AttemptLost, Run, RunCancelled, RunCreated, RunEvent, TaskFailed
from actorbatch.domain.servers import Server, ServerEvent
from actorbatch.errors import Conflict, StoreUnavailable
from actorbatch.frozen import frozen
from actorbatch.node.ports import EventLog, Report, Wakeup

MAX_IN_FLIGHT = 4  # deliveries one server sends at once
RETRY_S = 1.0  # a step an outage cut short is taken again this much later
MAX_CONFLICT_RETRIES = 20
MAX_REMEMBERED = 10_000  # runs known not to alert, notifications known to exist: bounded memories


@frozen
class Delivery:
    """One delivery attempt this server holds: the attempt number to report under, and what to send (a copy of the
    notification as claimed, which the sending thread only reads)."""

    attempt: int
    notification: Notification


@frozen
class Delivered:
    """The outcome of a delivery attempt: `error` None if it was sent."""

    notification_id: UUID
    attempt: int
    error: str | None


class NotifyOutbox(Wakeup, Protocol):
    def deliver(self, delivery: Delivery) -> None:
        """Send it (in the background) and report a Delivered."""

    def read(self) -> None:
        """A lease may have run out since the log was last read whole: have it read again (`read_at` moves on,
        and a step follows)."""


class Directory(Protocol):
    def email(self, user: str) -> str | None:
        """The user's e-mail address, if their profile has one."""


class _Bounded(OrderedDict[UUID, None]):
    def remember(self, key: UUID) -> None:
        self[key] = None
        if len(self) > MAX_REMEMBERED:
            self.popitem(last=False)


class NotifyCore:
    """One server's notifier: `channels` are those it can deliver (webhooks; e-mail when SMTP is configured)."""

    def __init__(self, name: str, log: EventLog, outbox: NotifyOutbox, directory: Directory,
                 channels: Iterable[str], lease_timeout_s: float, policy: RetryPolicy,
                 read_at: Callable[[], datetime | None], problems: Report) -> None:
        self.name, self.log, self.outbox, self.directory = name, log, outbox, directory
        self.channels = frozenset(channels) & frozenset(DELIVERED)
        self.lease_timeout_s, self.policy, self.read_at, self.problems = lease_timeout_s, policy, read_at, problems
        self.book: dict[UUID, Notification] = {}  # deliveries not finished: queued, sending, retrying
        self.servers: dict[UUID, Server] = {}
        self.mine: dict[UUID, int] = {}  # deliveries this server is sending -> attempt
        self.draining = False
        self.quarantine = Quarantine()
        self._runs: dict[UUID, Run] = {}  # runs that may alert, folded until they complete
        self._suspects: set[UUID] = set()  # runs to load from the log: one failed, or our fold of it has a gap
        self._stale: set[UUID] = set()  # notifications to load from the log again
        self._quiet = _Bounded()  # runs known not to alert
        self._known = _Bounded()  # notifications known to be queued
        self._queue: list[NotificationQueued] = []
        self._outcomes: list[Delivered] = []
        self._unsettled: list[DeliveryClaimed] = []  # claims whose append went unanswered
        self._stepping = False
        self._wake: datetime | None = None
        self._reap_at: datetime | None = None  # no delivery lease of another server runs out before this
        self._asked_at: datetime | None = None  # the read_at we had when we last asked for a fresher read

    def seed(self, runs: Iterable[Run], notifications: Iterable[Notification], servers: Iterable[Server]) -> None:
        """From the read models: active runs that may alert, deliveries not finished, servers."""
        for run in runs:
            if run.definition is not None and run.definition.alerts != "never":
                self._runs[run.id] = run
        for notification in notifications:
            if notification.status in ("queued", "sending", "retrying"):
                self.book[notification.id] = notification
        for server in servers:
            if server.id is not None:
                self.servers[server.id] = server

    # ---- messages ----

    def observed(self, events: Sequence[Event], now: datetime) -> None:
        """Events from the log, this server's own included; a step follows only if they gave it work."""
        relevant = False
        for event in events:
            if isinstance(event, RunEvent):
                self._run_event(event, now)
            elif isinstance(event, NotificationEvent):
                self._notification_event(event)
                relevant = True
            elif isinstance(event, ServerEvent):
                observe_server(self.servers, event, self.quarantine)
        self.problems(self.quarantine.take_found())
        if relevant or not self.idle:
            self.tick()

    @property
    def idle(self) -> bool:
        """Nothing to decide until something is heard: no delivery waits, nothing to queue, load or record."""
        return not (self.book or self._queue or self._suspects or self._stale or self._outcomes or self._unsettled)

    def delivered(self, outcome: Delivered) -> None:
        self._outcomes.append(outcome)
        self.tick()

    def drain(self) -> None:
        """Claim nothing more; what is being sent finishes."""
        self.draining = True

    def tick(self) -> None:
        if not self._stepping:
            self._stepping = True
            self.outbox.again()

    @property
    def busy(self) -> int:
        """Deliveries being sent, or sent and not yet recorded."""
        return len(self.mine) + len(self._unsettled)

    def _run_event(self, event: RunEvent, now: datetime) -> None:
        run_id = event.originator_id
        run = self._runs.get(run_id)
        if run is None:
            if isinstance(event, RunCreated):
                if event.originator_version == 1 and event.definition["alerts"] == "always":
                    self._fold(Run(), event, now)
            elif isinstance(event, TaskFailed | AttemptLost | RunCancelled) and run_id not in self._quiet:
                self._suspects.add(run_id)
            return
        if event.originator_version == run.version + 1:
            self._fold(run, event, now)
        elif event.originator_version > run.version + 1:  # heard out of order: read it whole
            del self._runs[run_id]
            self._suspects.add(run_id)

    def _fold(self, run: Run, event: RunEvent, now: datetime) -> None:
        self._runs[event.originator_id] = run
        if not self.quarantine.fold(run, event):
            del self._runs[event.originator_id]
        elif run.complete:
            del self._runs[event.originator_id]
            self._completed(run, now)

    def _notification_event(self, event: NotificationEvent) -> None:
        notification_id = event.originator_id
        self._known.remember(notification_id)
        notification = self.book.get(notification_id)
        if notification is None:
            if isinstance(event, NotificationQueued) and event.originator_version == 1 and event.channel in DELIVERED:
                notification = self.book[notification_id] = Notification()
            elif isinstance(event, DeliveryFailed) and event.retry_at is not None:
                self._stale.add(notification_id)  # a late failure after a loss: to be retried after all
                return
            else:
                return
        if event.originator_version > notification.version + 1:
            self._stale.add(notification_id)
        elif event.originator_version == notification.version + 1:
            if not self.quarantine.fold(notification, event):
                del self.book[notification_id]
            else:
                self._keep(notification)

    def _keep(self, notification: Notification) -> None:
        """Keep a delivery in the book while it is not finished."""
        if notification.status in ("sent", "failed"):
            self.book.pop(notification.id, None)
        else:
            self.book[notification.id] = notification

    def _completed(self, run: Run, now: datetime) -> None:
        assert run.definition is not None
        status = run.status(now)
        if not alerts_on(run.definition.alerts, status):
            self._quiet.remember(run.id)
            return
        announced = outcome(run, status)
        self._queue.extend(e for e in self._notifications(announced, run.definition.notify, now)
                           if e.originator_id not in self._known)

    def _notifications(self, announced: Outcome, webhooks: Sequence[str], now: datetime) -> list[NotificationQueued]:
        user = announced.user
        queued = [Notification.queue(announced, "message", user, user, now)]
        address = self.directory.email(user) if "email" in self.channels else None
        if address:
            queued.append(Notification.queue(announced, "email", address, user, now))
        queued.extend(Notification.queue(announced, "webhook", url, url, now) for url in webhooks)
        return queued

    # ---- the step ----

    def step(self, now: datetime) -> None:
        """One decision step; StoreUnavailable passes through, with everything undecided kept for the next."""
        self._stepping = False
        self._settle(now)
        self._load_suspects(now)
        self._load_stale()
        self._record_outcomes(now)
        self._append_queue()
        self._reap(now)
        self._claim(now)
        self.problems(self.quarantine.take_found())
        later = [n.not_before for n in self.book.values()
                 if n.channel in self.channels and n.status == "retrying" and n.not_before is not None]
        if self._reap_at is not None:
            later.append(self._reap_at)
        wake = min(later, default=None)
        if wake is not None and wake != self._wake:
            self._wake = wake
            self.outbox.wake_at(wake)

    def _settle(self, now: datetime) -> None:
        """A claim whose append went unanswered: if it was recorded, nothing was sent under it, so it counts as a
        failed attempt (retried as any other); if not, it never happened."""
        while self._unsettled:
            claim = self._unsettled[0]
            if self.log.recorded(claim):
                self.mine[claim.originator_id] = claim.attempt
                self._outcomes.append(Delivered(claim.originator_id, claim.attempt,
                                                "not attempted: the store did not answer when it was claimed"))
            self._unsettled.pop(0)

    def _load(self, notification_id: UUID) -> Notification | None:
        try:
            notification = self.log.load(Notification, notification_id)
        except Quarantined as quarantined:
            self.problems([quarantined.problem])
            self.book.pop(notification_id, None)
            return None
        if notification is not None:
            self._keep(notification)
        return notification

    def _load_stale(self) -> None:
        while self._stale:
            notification_id = self._stale.pop()
            self.book.pop(notification_id, None)
            self._load(notification_id)

    def _load_suspects(self, now: datetime) -> None:
        """Runs that failed a task or were cancelled: fold them from the log if they may alert."""
        while self._suspects:
            run_id = next(iter(self._suspects))
            try:
                run = self.log.load(Run, run_id)
            except Quarantined as quarantined:
                self.problems([quarantined.problem])
                run = None
            self._suspects.discard(run_id)
            if run is None or run.definition is None or run.definition.alerts == "never":
                self._quiet.remember(run_id)
            elif run.complete:
                self._completed(run, now)
            else:
                self._runs[run_id] = run

    def _record_outcomes(self, now: datetime) -> None:
        while self._outcomes:
            done = self._outcomes[0]
            for _ in range(MAX_CONFLICT_RETRIES):
                notification = self.book.get(done.notification_id) or self._load(done.notification_id)
                event = None if notification is None else notification.finish(done.attempt, now, done.error,
                                                                              self.policy)
                if notification is None or event is None:
                    break
                try:
                    self.log.append(event)
                except Conflict:
                    self._stale.add(done.notification_id)
                    self._load_stale()
                    continue
                notification.apply(event)
                self._keep(notification)
                break
            self.mine.pop(done.notification_id, None)
            self._outcomes.pop(0)

    def _append_queue(self) -> None:
        """Queue what this server decided, in one transaction (a run's notifications appear together); a conflict
        means another server queued some first: then one by one."""
        if not self._queue:
            return
        try:
            self.log.append(*self._queue)
            recorded = list(self._queue)
        except Conflict:
            recorded = []
            for event in self._queue:
                try:
                    self.log.append(event)
                except Conflict:
                    continue  # StoreUnavailable passes: the queue is kept whole, and appended again
                recorded.append(event)
        self._queue.clear()
        for event in recorded:
            self._notification_event(event)

    def _reap(self, now: datetime) -> None:
        """Deliveries of other servers whose lease ran out, as of the last moment the whole log was read; when one
        may have run out since then, a fresher read is asked for (once per read: its answer brings a step)."""
        self._reap_at = None
        read_at = self.read_at()
        if read_at is None:
            return
        judged = min(now, read_at)
        by_name = {s.name: s for s in self.servers.values()}
        for notification in list(self.book.values()):
            if notification.status != "sending" or notification.id in self.mine:
                continue
            assert notification.lease_until is not None and notification.claimed_at is not None
            end = held_until(notification.lease_until, notification.claimed_at, by_name.get(notification.server or ""))
            lost = notification.expire(judged, end)
            if lost is None:
                run_out = end + INSTANT  # the first moment it can be found run out
                self._reap_at = run_out if self._reap_at is None else min(self._reap_at, run_out)
                if run_out <= now and self._asked_at != read_at:
                    self._asked_at = read_at
                    self.outbox.read()
                continue
            try:
                self.log.append(lost)
            except Conflict:
                self._stale.add(notification.id)
                continue
            notification.apply(lost)
            self._keep(notification)

    def _claim(self, now: datetime) -> None:
        if self.draining:
            return
        free = MAX_IN_FLIGHT - self.busy
        ready = sorted((n for n in self.book.values() if n.channel in self.channels and n.claimable(now)),
                       key=lambda n: (n.not_before or n.queued_at or now, str(n.id)))
        for notification in ready[:max(free, 0)]:
            claim = notification.claim(self.name, now, self.lease_timeout_s)
            try:
                self.log.append(claim)
            except Conflict:
                self._stale.add(notification.id)
                continue
            except StoreUnavailable:
                self._unsettled.append(claim)
                raise
            notification.apply(claim)
            self.mine[notification.id] = claim.attempt
            self.outbox.deliver(Delivery(claim.attempt, copy.copy(notification)))
