"""At most one delivery per (run, recipient, channel), and every delivery eventually ends.

The endpoint tells this checker of every e-mail and webhook that arrives: a second arrival of one notification
(its id derives from run, channel and recipient) fails at once. At the end, after the liveness phase (the
endpoint healthy again), no e-mail or webhook may still wait to be sent, none may have been given up before its
last try unless its server died while sending it, and each one recorded `sent` arrived.
"""

from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

from actorbatch.domain.notifications import DELIVERED, Notification
from simulations.checkers import CheckFailed

CHECKER = "one-delivery"


class Deliveries:
    def __init__(self) -> None:
        self.arrived: dict[UUID, datetime] = {}

    def received(self, notification: Notification, at: datetime) -> None:
        first = self.arrived.get(notification.id)
        if first is not None:
            raise CheckFailed(CHECKER, f"the {notification.channel} to {notification.recipient} for run "
                              f"{notification.run_id} arrived twice (first at {first})", at)
        self.arrived[notification.id] = at

    def pending(self, notifications: Iterable[Notification]) -> list[Notification]:
        return [n for n in notifications if n.channel in DELIVERED and n.status in ("queued", "sending", "retrying")]

    def final(self, notifications: Iterable[Notification], tries: int, at: datetime) -> None:
        """Nothing waits to be sent; nothing was given up before its last try (or lost with its server); what is
        recorded sent arrived."""
        notifications = list(notifications)
        waiting = self.pending(notifications)
        if waiting:
            n = waiting[0]
            raise CheckFailed("delivery-liveness", f"{len(waiting)} deliveries never ended; e.g. the {n.channel} to "
                              f"{n.recipient} for run {n.run_id} is {n.status} (attempt {n.attempt})", at)
        for n in notifications:
            if n.channel in DELIVERED and n.status == "failed" and not n.lost and n.attempt < tries:
                raise CheckFailed("delivery-liveness", f"the {n.channel} for run {n.run_id} was given up after "
                                  f"{n.attempt} of {tries} tries: {n.error}", at)
            if n.channel in DELIVERED and n.status == "sent" and n.id not in self.arrived:
                raise CheckFailed(CHECKER, f"the {n.channel} for run {n.run_id} is recorded sent but never arrived",
                                  at)
