"""The scheduler's and the notifier's channel: attempts' events held back a moment, and never overtaken."""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from actorbatch.actors.echo import ECHO_S, Echo
from actorbatch.actors.messages import CaughtUp, Observed
from actorbatch.actors.timer import Timer
from actorbatch.domain.runs import RunCancelled, TaskClaimed, TaskSucceeded

T0 = datetime(2026, 12, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now_at = T0

    def now(self) -> datetime:
        return self.now_at


class Inbox:
    def __init__(self) -> None:
        self.got: list[Any] = []

    def tell(self, message: Any) -> None:
        self.got.append(message)

    def is_alive(self) -> bool:
        return True


def events(inbox: Inbox) -> list[Any]:
    return [event for message in inbox.got if isinstance(message, Observed) for event in message.events]


def test_claims_and_outcomes_wait_together_and_nothing_overtakes_them() -> None:
    clock = Clock()
    timer = Timer(clock)
    scheduler, notifier = Inbox(), Inbox()
    echo = Echo([scheduler, notifier], timer)
    run = uuid4()
    claimed = TaskClaimed(originator_id=run, originator_version=2, timestamp=T0, task="t", attempt=1, server="s",
                          lease_until=T0, starts_at=T0)
    succeeded = TaskSucceeded(originator_id=run, originator_version=3, timestamp=T0, task="t", attempt=1,
                              result=None)
    echo.heard([claimed])
    echo.heard([succeeded])
    assert scheduler.got == [] and notifier.got == []  # held back
    clock.now_at = T0 + timedelta(seconds=ECHO_S)
    timer.tell_due(clock.now())
    assert events(scheduler) == events(notifier) == [claimed, succeeded]  # in one message, in order
    assert len(scheduler.got) == 1

    later = TaskClaimed(originator_id=run, originator_version=4, timestamp=T0, task="u", attempt=1, server="s",
                        lease_until=T0, starts_at=T0)
    cancelled = RunCancelled(originator_id=run, originator_version=5, timestamp=T0, user="ann")
    echo.heard([later])
    echo.tell(CaughtUp())  # the follower's news goes out after what was held
    echo.heard([cancelled])  # not an attempt's event: at once
    assert events(scheduler)[2:] == [later, cancelled]
    assert isinstance(scheduler.got[2], CaughtUp)
    clock.now_at += timedelta(seconds=ECHO_S)
    timer.tell_due(clock.now())  # the flush planned for `later` finds nothing left
    assert events(notifier) == [claimed, succeeded, later, cancelled]
