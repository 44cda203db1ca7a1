"""The log follower actor: reads the notification log from a position and tells the subscribers what is new.

This is how a server hears other processes. Events its own process writes reach the subscribers at once through the
store's listeners, so the follower's reads bound only the latency of work submitted elsewhere. When it reads is
decided by `Pace`: on PostgreSQL, when a commit is notified (plus a slow safety read); while notifications do not
arrive (SQLite, or PostgreSQL's listen connection is down), every `poll_s`; on SQLite, after a quiet second, at a
repeating timer entry every `relaxed_s` (Look).
"""

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pykka

from actorbatch.actors.messages import CaughtUp, Due, Fresh, Heard, Listening, Look, Observed, Poll, Recipient, tell
from actorbatch.actors.outages import rides_out_outages
from actorbatch.actors.ports import NodeStore
from actorbatch.actors.timer import Timer
from actorbatch.clock import Clock
from actorbatch.domain.events import Event
from actorbatch.errors import ActorbatchError

BATCH = 2000
FIRST_BATCH = 50  # a backlog is read in batches that double from this size up to BATCH: the first claims of a
# server starting on thousands of unheard runs wait for 50 of them to be decoded and folded, not for all of them
QUIET_S = 1.0  # polling without notifications: after this long with nothing new, poll every `relaxed_s` instead


@dataclass
class Pace:
    """How long after a read the follower reads again (sans-I/O).

    Listening (commit notifications arrive): every `safety_s`, for anything a lost notification would hide; each
    notification brings a read at once, but never sooner than `poll_s` after the previous one, so a busy log costs
    no more reads than polling did. Not listening: every `poll_s`; if `relaxed_s` is set (SQLite), every
    `relaxed_s` once nothing new was found for QUIET_S, and every `poll_s` again as soon as something is.
    """

    poll_s: float
    safety_s: float
    relaxed_s: float | None = None
    listening: bool = False
    found_at: datetime | None = None  # the last read that found events of other processes

    def read(self, at: datetime, found: bool) -> None:
        if found or self.found_at is None:
            self.found_at = at

    def relaxed(self, at: datetime) -> bool:
        """Reading every `relaxed_s`: not listening, and nothing new found for QUIET_S."""
        return (not self.listening and self.relaxed_s is not None and self.found_at is not None
                and (at - self.found_at).total_seconds() >= QUIET_S)

    def interval_s(self, at: datetime) -> float:
        if self.listening:
            return self.safety_s
        return self.relaxed_s if self.relaxed_s is not None and self.relaxed(at) else self.poll_s


class Doorbell:
    """How the listening thread wakes the follower: one Heard message per burst of notifications, not one each."""

    def __init__(self) -> None:
        self.follower: pykka.ActorRef[Any] | None = None
        self._rung = threading.Event()  # a Heard message is on its way and not yet handled

    def ring(self) -> None:
        if not self._rung.is_set() and self.follower is not None:
            self._rung.set()
            tell(self.follower, Heard())

    def answered(self) -> None:
        self._rung.clear()


class Follower(pykka.ThreadingActor):
    def __init__(self, store: NodeStore, position: int, subscribers: Sequence[Recipient],
                 timely: Sequence[Recipient], clock: Clock, timer: Timer, pace: Pace,
                 doorbell: Doorbell) -> None:
        """`timely`: the subscribers that judge by how fresh the view is: they hear the `read_at` of the first
        read that reaches the end of the log, and later ones when they ask (Fresh: a lease to judge); every
        subscriber hears new events, with the `read_at` of a read that reached the end."""
        super().__init__()
        self.store, self.position, self.subscribers, self.clock = store, position, list(subscribers), clock
        self.timer, self.pace, self.doorbell = timer, pace, doorbell
        self.doorbell.follower = self.actor_ref
        if pace.relaxed_s is not None:  # the relaxed reads come from one repeating entry: planning each anew
            timer.every(pace.relaxed_s, self.actor_ref, Look())  # would wake the timer twice a read
        self._looking = False  # relaxed: the next read comes with a Look, not a planned Due
        self._caught_up = False
        self._owed = list(timely)  # subscribers waiting for a read_at (at first, every timely one)
        self._tried_at: datetime | None = None  # the last read (or attempt, while the store is down)
        self._soon: datetime | None = None  # a notified commit waits for a read at this time
        self._due: datetime | None = None  # the time of the planned read
        self._token = 0  # names the planned read; a Due with another token is a replaced plan
        self._wanted = False  # a read was asked for and is still owed
        self._at_head = False  # the last read reached the end of the log
        self._batch = FIRST_BATCH  # how many notifications the next read asks for

    def on_receive(self, message: Any) -> Any:
        try:
            self._receive(message)
        finally:
            self._plan()

    @rides_out_outages
    def _receive(self, message: Any) -> None:
        now = self.clock.now()
        if isinstance(message, Due):
            if message.token == self._token:  # else a plan replaced by a sooner one, which came or will come
                self._due, self._wanted = None, True
        elif isinstance(message, Listening):
            self.pace.listening = message.on  # either way, read now: commits may have gone unheard meanwhile
            self._wanted = True
        elif isinstance(message, Heard):
            self.doorbell.answered()  # before the read: a commit notified during it rings again
            self._read_soon(now)
        elif isinstance(message, Fresh):
            if message.subscriber not in self._owed:
                self._owed.append(message.subscriber)
            self._read_soon(now)
        elif isinstance(message, Poll):
            self._wanted = True
        elif isinstance(message, Look):
            self._wanted = self._wanted or self._looking
        if self._wanted and self.actor_inbox.empty():  # one read for a burst of messages, after the last one
            self._wanted = False
            self._read(now)

    def _read_soon(self, now: datetime) -> None:
        """Read now, or a poll after the last read if that is later: asked often, it reads no more than polling."""
        gap_until = None if self._tried_at is None else self._tried_at + timedelta(seconds=self.pace.poll_s)
        if gap_until is not None and now < gap_until:
            self._soon = gap_until
        else:
            self._wanted = True

    def _read(self, read_at: datetime) -> None:
        self._tried_at, self._soon = read_at, None
        events: list[Event]
        if self._at_head and self.store.unchanged():  # SQLite: nothing committed since the last look
            events, read = [], 0
        else:
            self.position, events, read = self.store.follow(self.position, self._batch)
        self.pace.read(read_at, bool(events))  # what this process wrote itself it has heard already
        at_head = self._at_head = read < self._batch
        self._batch = FIRST_BATCH if at_head else min(2 * self._batch, BATCH)
        if events:
            for subscriber in self.subscribers:
                tell(subscriber, Observed(events, read_at if at_head else None))
        if not at_head:
            self.actor_ref.tell(Poll())
            return
        if not events:  # nothing new: only those waiting for it hear how fresh the view is
            for subscriber in self._owed:
                tell(subscriber, Observed(events, read_at))
        self._owed = []
        if not self._caught_up:
            self._caught_up = True
            for subscriber in self.subscribers:
                tell(subscriber, CaughtUp())

    def _plan(self) -> None:
        """Make sure the timer will bring the next read: keep the planned one unless this one must come sooner."""
        if self._tried_at is None:
            return  # the first read comes from the supervisor's Poll
        self._looking = self.pace.relaxed(self._tried_at)
        want = None if self._looking else self._tried_at + timedelta(seconds=self.pace.interval_s(self._tried_at))
        if self._soon is not None:
            want = self._soon if want is None else min(want, self._soon)
        if want is not None and (self._due is None or want < self._due):
            self._token += 1
            self._due = want
            self.timer.at(want, self.actor_ref, Due(self._token))


class Projector(pykka.ThreadingActor):
    """Keeps the read models close to the log, so listings stay cheap for the CLI."""

    def __init__(self, views: Any) -> None:
        super().__init__()
        self.views, self.store = views, views.store

    @rides_out_outages
    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Poll) and self.actor_inbox.empty():
            try:
                self.views.catch_up()
            except ActorbatchError:
                self.views.forget()
                raise
        return None
