"""The simulated event store: one in-memory log with the real store's single rule, and failing connections.

The real store (eventsourcing over SQLite or PostgreSQL) refuses an append when any (aggregate id, version) in it
is already taken, and then writes none of the batch. That rule, not any lock, decides every race between servers,
so it is all this log enforces: it does not insist that versions be consecutive, because the real store does not
either (the checkers do). It is a plain list, which keeps a simulated day fast and the log easy to hash.
"""

import hashlib
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar
from uuid import UUID

from actorbatch.domain.events import Event
from actorbatch.domain.quarantine import fold_stream
from actorbatch.errors import Conflict, Moved, StoreFailed
from actorbatch.store.outage import Breaker

A = TypeVar("A")
Listener = Callable[[Sequence[Event], str], None]


class WriteFailed(Exception):
    """The store connection failed during an append (what a database error looks like to a server)."""


class SimLog:
    """Append with optimistic concurrency, load aggregates, read in order; listeners hear every append."""

    def __init__(self) -> None:
        self.entries: list[tuple[Event, str]] = []  # position p (from 1) is entries[p - 1]: (event, writer)
        self._taken: set[tuple[UUID, int]] = set()
        self._streams: dict[UUID, list[Event]] = {}
        self.listeners: list[Listener] = []
        self.down = False  # a store outage: servers' connections get StoreUnavailable while it lasts
        self.swallowing: set[str] = set()  # writers whose next append in the outage is written, its reply lost

    def append(self, events: Sequence[Event], writer: str) -> None:
        """Record `events` in one transaction; Conflict, writing nothing, if any (id, version) is taken."""
        keys = [(e.originator_id, e.originator_version) for e in events]
        if len(set(keys)) != len(keys) or not self._taken.isdisjoint(keys):
            raise Conflict("another writer recorded a conflicting event first")
        self._taken.update(keys)
        for event in events:
            self.entries.append((event, writer))
            self._streams.setdefault(event.originator_id, []).append(event)
        for listener in self.listeners:
            listener(events, writer)

    def events(self, aggregate_id: UUID, after_version: int = 0) -> list[Event]:
        """The aggregate's events after `after_version`, in version order."""
        stream = self._streams.get(aggregate_id, [])
        return sorted((e for e in stream if e.originator_version > after_version), key=lambda e: e.originator_version)

    def last(self, aggregate_id: UUID) -> Event | None:
        """The aggregate's latest event (as EventStore.last)."""
        stream = self._streams.get(aggregate_id, [])
        return max(stream, key=lambda e: e.originator_version, default=None)

    def recorded(self, event: Event) -> bool:
        """Whether this very event is in the log (as EventStore.recorded)."""
        found = [e for e in self._streams.get(event.originator_id, ())
                 if e.originator_version == event.originator_version]
        return bool(found) and type(found[0]) is type(event) and found[0].timestamp == event.timestamp

    def moved(self, unchanged: Mapping[UUID, int]) -> frozenset[UUID]:
        """The aggregates of `unchanged` no longer at the version given (0: no events), for a conditional append."""
        return frozenset(i for i, version in unchanged.items()
                         if getattr(self.last(i), "originator_version", 0) != version)

    def load(self, factory: Callable[[], A], aggregate_id: UUID) -> A | None:
        """As EventStore.load: Quarantined if an event of the aggregate cannot be folded."""
        events = self.events(aggregate_id)
        return fold_stream(factory, events) if events else None

    def read(self, after: int, limit: int = 1000) -> list[tuple[int, Event]]:
        """Up to `limit` events after position `after`, with their positions (as EventStore.read)."""
        return [(after + i + 1, event) for i, (event, _) in enumerate(self.entries[after:after + limit])]

    def head(self) -> int:
        return len(self.entries)

    def digest(self) -> str:
        """A hash of the whole log in order: the same seed must give the same digest, run after run."""
        sha = hashlib.sha256()
        for event, writer in self.entries:
            sha.update(f"{writer} {event!r}\n".encode())
        return sha.hexdigest()


@dataclass
class WriteFaults:
    """Whether the next append fails, drawn from a seeded generator; switched off for the liveness phase."""

    rng: random.Random
    fail_p: float
    ambiguous_p: float
    enabled: bool = True

    def before(self) -> bool:
        return self.enabled and self.fail_p > 0 and self.rng.random() < self.fail_p

    def after(self) -> bool:
        return self.enabled and self.ambiguous_p > 0 and self.rng.random() < self.ambiguous_p


class ServerStore:
    """The log as one server process sees it: its appends are tagged with its name and may fail; while the store
    is away its calls go through the real store's breaker, which (as a real server's) notices the store is back
    only at its next probe, so servers recover one by one."""

    def __init__(self, log: SimLog, writer: str, faults: WriteFaults, clock_s: Callable[[], float]) -> None:
        self.log, self.writer, self.faults = log, writer, faults
        self.breaker = Breaker(writer, clock=clock_s, say=_quiet)
        self.failure: StoreFailed | None = None
        self._listeners: list[Callable[[Sequence[Event]], None]] = []
        self._own: set[tuple[UUID, int]] | None = None  # appended since the first `follow`, not yet met by it

    def _call(self, do: Callable[[], A]) -> A:
        """One call to the store, as EventStore._guard makes it: fail fast while the breaker is open."""
        self.breaker.admit()
        if self.faults.enabled and self.log.down:
            raise self.breaker.failed("a simulated outage")
        try:
            answer = do()
        except Conflict:
            self.breaker.succeeded()
            raise
        self.breaker.succeeded()
        return answer

    def listen(self, listener: Callable[[Sequence[Event]], None]) -> None:
        self._listeners.append(listener)

    def unlisten(self, listener: Callable[[Sequence[Event]], None]) -> None:
        self._listeners.remove(listener)

    def follow(self, after: int, limit: int) -> tuple[int, list[Event], int]:
        """As EventStore.follow: what other processes appended after `after`, skipping this process's appends."""
        chunk = self._call(lambda: self.log.entries[after:after + limit])
        own = self._own = set() if self._own is None else self._own
        events = []
        for event, _ in chunk:
            key = (event.originator_id, event.originator_version)
            if key in own:
                own.discard(key)
            else:
                events.append(event)
        return after + len(chunk), events, len(chunk)

    def unchanged(self) -> bool:
        """Whether nothing was committed since the last look: never known without reading (as on PostgreSQL)."""
        return False

    def append(self, *events: Event) -> None:
        unaware = self.breaker.down_since_s is None  # this process has not met the outage yet
        if self.faults.enabled and self.log.down and unaware and self.writer in self.log.swallowing:
            self.log.swallowing.discard(self.writer)  # in flight as the store went away: written, unanswered
            self.log.append(events, self.writer)
            raise self.breaker.failed("the store went away during the commit")
        self._call(lambda: self._append(events))
        if self._own is not None:
            self._own.update((e.originator_id, e.originator_version) for e in events)
        for listener in list(self._listeners):
            listener(events)

    def append_if(self, unchanged: Mapping[UUID, int], *events: Event) -> None:
        """As EventStore.append_if: the look and the append are one step of the loop, so nothing commits between."""
        moved = self._call(lambda: self.log.moved(unchanged))
        if moved:
            raise Moved(moved)
        self.append(*events)

    def _append(self, events: Sequence[Event]) -> None:
        if self.faults.before():
            raise WriteFailed("the connection failed before the commit")
        self.log.append(events, self.writer)
        if self.faults.after():
            raise WriteFailed("the connection failed after the commit: it was written")

    def load(self, factory: Callable[[], A], aggregate_id: UUID) -> A | None:
        return self._call(lambda: self.log.load(factory, aggregate_id))

    def events(self, aggregate_id: UUID, after_version: int = 0) -> list[Event]:
        return self._call(lambda: self.log.events(aggregate_id, after_version))

    def last(self, aggregate_id: UUID) -> Event | None:
        return self._call(lambda: self.log.last(aggregate_id))

    def recorded(self, event: Event) -> bool:
        return self._call(lambda: self.log.recorded(event))


def _quiet(*args: object) -> None:
    """A simulated breaker's log lines go nowhere: the timeline says when the store was away."""
