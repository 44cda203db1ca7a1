"""The simulated event store: one in-memory log with the real store's single rule, and failing connections.

The real store (eventsourcing over SQLite or PostgreSQL) refuses an append when any (aggregate id, version) in it
is already taken, and then writes none of the batch. That rule, not any lock, decides every race between servers,
so it is all this log enforces: it does not insist that versions be consecutive, because the real store does not
either (the checkers do). It is a plain list, which keeps a simulated day fast and the log easy to hash.
"""

import hashlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar
from uuid import UUID

from actorbatch.domain.events import Event
from actorbatch.domain.quarantine import fold_stream
from actorbatch.errors import Conflict, StoreUnavailable

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
    """The log as one server process sees it: its appends are tagged with its name and may fail."""

    def __init__(self, log: SimLog, writer: str, faults: WriteFaults) -> None:
        self.log, self.writer, self.faults = log, writer, faults

    def _reachable(self) -> None:
        if self.faults.enabled and self.log.down:
            raise StoreUnavailable("store unreachable (a simulated outage)")

    def append(self, *events: Event) -> None:
        self._reachable()
        if self.faults.before():
            raise WriteFailed("the connection failed before the commit")
        self.log.append(events, self.writer)
        if self.faults.after():
            raise WriteFailed("the connection failed after the commit: it was written")

    def load(self, factory: Callable[[], A], aggregate_id: UUID) -> A | None:
        self._reachable()
        return self.log.load(factory, aggregate_id)

    def events(self, aggregate_id: UUID, after_version: int = 0) -> list[Event]:
        self._reachable()
        return self.log.events(aggregate_id, after_version)

    def last(self, aggregate_id: UUID) -> Event | None:
        self._reachable()
        return self.log.last(aggregate_id)

    def recorded(self, event: Event) -> bool:
        self._reachable()
        return self.log.recorded(event)
