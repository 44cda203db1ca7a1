"""The one event log of the whole system: an eventsourcing application holding every aggregate.

Events are appended with optimistic concurrency (a version already taken raises Conflict, and the loser re-decides),
read back per aggregate, and read in order from the notification log, which is the bus between processes.
"""

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    Mapper,
    OperationalError,
    PersistenceError,
    Transcoder,
)

from actorbatch.domain.events import Event
from actorbatch.domain.quarantine import describe, fold_stream, unreadable
from actorbatch.errors import ActorbatchError, Conflict, StoreFailed, StoreUnavailable
from actorbatch.store import notify, signing, transcoder
from actorbatch.store.outage import Breaker, first_line, is_fatal
from actorbatch.store.topics import EVENTS, StableTopicMapper
from actorbatch.store.transcoder import MsgpackTranscoder
from actorbatch.store.urls import StoreUrl, parse_url

A = TypeVar("A")
Listener = Callable[[Sequence[Event]], None]


class NotInitialised(ActorbatchError):
    """The store has no tables yet."""


class _Log(Application[UUID]):
    name = "actorbatch"

    def construct_transcoder(self) -> Transcoder:
        return MsgpackTranscoder()

    def construct_mapper(self) -> Mapper[UUID]:
        return StableTopicMapper(transcoder=self.construct_transcoder(), signing_key=signing.signing_key())


def _env(url: StoreUrl, create: bool) -> dict[str, str]:
    create_table = "y" if create else "n"
    if url.kind == "sqlite":
        return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": url.sqlite_target(),
                "SQLITE_LOCK_TIMEOUT": "30", "CREATE_TABLE": create_table}
    if url.kind == "postgresql":
        return {"PERSISTENCE_MODULE": "actorbatch.store.pgfactory:Factory", "ACTORBATCH_CONNINFO": url.extra_conninfo(),
                "POSTGRES_DBNAME": url.dbname,
                "POSTGRES_HOST": url.host, "POSTGRES_PORT": str(url.port), "POSTGRES_USER": url.user,
                "POSTGRES_PASSWORD": url.password, "POSTGRES_LOCK_TIMEOUT": "30", "POSTGRES_POOL_SIZE": "4",
                "POSTGRES_CONNECT_TIMEOUT": "5",
                "CREATE_TABLE": create_table}
    return {"PERSISTENCE_MODULE": "eventsourcing.popo"}


def _fail_fast(recorder: Any) -> None:
    """Undo eventsourcing's own retries (ten tries, each waiting up to the pool timeout: about a minute per call
    while PostgreSQL is down, with the calling actor stuck): here the breaker decides when to try again."""
    for name in ("insert_events", "select_events", "select_notifications", "max_notification_id"):
        wrapped = getattr(getattr(type(recorder), name, None), "__wrapped__", None)
        if wrapped is not None:
            setattr(recorder, name, wrapped.__get__(recorder))


class EventStore:
    """Append, load and follow events; listeners hear this process's own appends at once."""

    def __init__(self, url: str | StoreUrl, *, create: bool = False) -> None:
        self.url = parse_url(url) if isinstance(url, str) else url
        if self.url.kind == "sqlite" and not create and not os.path.exists(self.url.path):
            raise NotInitialised(f"no store at {self.url.path}: run `actorbatch init` first")
        try:
            self._app = _Log(env=_env(self.url, create))
            if not create:
                self._app.recorder.max_notification_id()
        except (PersistenceError, OSError) as error:
            reason = first_line(error)
            if "no such table" in reason or ("relation" in reason and "does not exist" in reason):
                raise NotInitialised(f"store {self.url} is not initialised: run `actorbatch init`") from None
            failure = StoreUnavailable if isinstance(error, OperationalError | InterfaceError) else ActorbatchError
            raise failure(f"cannot open store {self.url}: {reason}") from None
        _fail_fast(self._app.recorder)
        if create and self.url.kind == "postgresql":
            try:
                notify.install(self.url)
            except Exception as error:  # noqa: BLE001 - the driver's errors, named in one line
                self._app.close()
                raise ActorbatchError(f"cannot add commit notifications to store {self.url}: {first_line(error)}"
                                      ) from None
        self.breaker = Breaker(str(self.url))
        self.failure: StoreFailed | None = None  # why a server using this store had to stop, once it had to
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        self._own: set[tuple[UUID, int]] | None = None  # appended here, not yet met by `follow`
        self.follows = 0  # reads of the log by `follow`: what a server's follower costs the database
        self._probe: sqlite3.Connection | None = None
        self._data_version: int | None = None

    def listen(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def unlisten(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.remove(listener)

    def append(self, *events: Event) -> None:
        """Record events in one transaction; Conflict if any (aggregate, version) is already taken."""
        if not events:
            return
        with self._guard():
            self._app.events.put(events)  # straight to the store: events are already decided and complete
        own = self._own
        if own is not None:
            with self._lock:
                own.update((e.originator_id, e.originator_version) for e in events)
        for listener in list(self._listeners):
            listener(events)

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Every call to the database: fail fast while it is down, and name what went wrong in one line.

        StoreUnavailable (transient: try again later) for a lost or refused connection, StoreFailed for a store
        that answers but cannot write (disk full, read-only), Conflict for a version already taken.
        """
        self.breaker.admit()
        try:
            yield
        except IntegrityError:
            self.breaker.succeeded()
            raise Conflict("another writer recorded a conflicting event first") from None
        except (OperationalError, InterfaceError) as error:
            reason = first_line(error)
            if is_fatal(reason):
                raise StoreFailed(f"store {self.url}: {reason}") from None
            raise self.breaker.failed(reason) from None
        self.breaker.succeeded()

    def events(self, aggregate_id: UUID, after_version: int = 0) -> list[Event]:
        with self._guard():
            stored = self._app.recorder.select_events(aggregate_id, gt=after_version or None)
        return [self._decode(s) for s in stored]

    def last(self, aggregate_id: UUID) -> Event | None:
        """The aggregate's latest event, or None: one indexed read, however many heartbeats came before it."""
        with self._guard():
            stored = self._app.recorder.select_events(aggregate_id, desc=True, limit=1)
        return self._decode(stored[0]) if stored else None

    def recorded(self, event: Event) -> bool:
        """Whether this very event is in the log: the answer to an append whose reply was lost in an outage."""
        with self._guard():
            stored = self._app.recorder.select_events(event.originator_id, gt=event.originator_version - 1,
                                                      lte=event.originator_version)
        if not stored:
            return False
        found = self._decode(stored[0])
        return type(found) is type(event) and found.timestamp == event.timestamp

    def has_event(self, aggregate_id: UUID, version: int) -> bool:
        """Whether the log holds some event of `aggregate_id` at `version`, wherever it sits."""
        with self._guard():
            return bool(self._app.recorder.select_events(aggregate_id, gt=version - 1, lte=version))

    def load(self, factory: Callable[[], A], aggregate_id: UUID) -> A | None:
        """The aggregate folded from all its events, or None if it has none; Quarantined if one of them cannot
        be read or folded (and no later event put it to rest)."""
        events = self.events(aggregate_id)
        return fold_stream(factory, events) if events else None

    def read(self, after: int, limit: int = 1000) -> list[tuple[int, Event]]:
        """Up to `limit` events from the notification log after position `after`, with their positions."""
        with self._guard():
            notes = self._app.recorder.select_notifications(start=after, limit=limit, inclusive_of_start=False)
        return [(n.id, self._decode(n)) for n in notes]

    def read_raw(self, after: int, limit: int = 1000, until: int | None = None) -> list[Any]:
        """Notifications as stored (the bytes, for checks that nothing was changed), after position `after` and
        up to `until`."""
        with self._guard():
            return list(self._app.recorder.select_notifications(start=after, limit=limit, stop=until,
                                                                inclusive_of_start=False))

    def follow(self, after: int, limit: int = 1000) -> tuple[int, list[Event], int]:
        """Like `read`, but skips (without decoding) what this process appended, which its listeners heard already.
        Returns the new position, the other processes' events, and how many notifications were read."""
        if self._own is None:
            self._own = set()
        self.follows += 1
        with self._guard():
            notes = self._app.recorder.select_notifications(start=after, limit=limit, inclusive_of_start=False)
        events = []
        with self._lock:
            own = self._own
            for note in notes:
                key = (note.originator_id, note.originator_version)
                if key in own:
                    own.discard(key)
                else:
                    events.append(note)
        position = notes[-1].id if notes else after
        return position, [self._decode(n) for n in events], len(notes)

    def unchanged(self) -> bool:
        """Whether certainly nothing was committed to the log since the last call. On SQLite a look at the file's
        `data_version`, which reads no rows (a few microseconds, against a query of the log); elsewhere, or if the
        look fails, False: read the log to find out."""
        if self.url.kind != "sqlite" or self.url.sqlite_target() != self.url.path:
            return False
        try:
            if self._probe is None:
                self._probe = sqlite3.connect(self.url.path, timeout=0, isolation_level=None,
                                              check_same_thread=False)
            version = self._probe.execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.Error:
            return False
        unchanged, self._data_version = version == self._data_version, version
        return bool(unchanged)

    def head(self) -> int:
        """The position of the last event in the log (0 when empty)."""
        with self._guard():
            return self._app.recorder.max_notification_id() or 0

    def decode(self, stored: Any) -> Event:
        """The event of a stored notification (see `read_raw`)."""
        return self._decode(stored)

    def decode_many(self, notes: Sequence[Any]) -> list[Event]:
        """The events of many stored notifications (see `read_raw`), as `decode` gives them. The common record (a
        known topic at its class's version, the state a msgpack map) is decoded here, the mapper's work without its
        generic steps; any other (an older class version to upcast, an unknown topic, a corrupt record) goes
        through `decode`."""
        mapper = self._app.mapper
        if mapper.cipher is not None or mapper.compressor is not None:
            return [self._decode(note) for note in notes]
        events: list[Event] = []
        new, split, unpack, versions = object.__new__, signing.split, transcoder.unpack, _CLASS_VERSIONS
        for note in notes:
            cls = EVENTS.get(note.topic)
            if cls is not None and type(note.originator_id) is UUID:
                state: Any = None
                with contextlib.suppress(Exception):  # `decode` names what is wrong with it
                    state = unpack(split(note.state)[1])
                if type(state) is dict and state.pop("class_version", 1) == versions[cls]:
                    state["originator_id"], state["originator_version"] = note.originator_id, note.originator_version
                    event = new(cls)
                    object.__setattr__(event, "__dict__", state)
                    events.append(event)
                    continue
            events.append(self._decode(note))
        return events

    def _decode(self, stored: Any) -> Event:
        """The event, or (if its record is corrupt) a stand-in naming it, which readers quarantine."""
        try:
            event = self._app.mapper.to_domain_event(stored)
        except Exception as error:  # noqa: BLE001 - a corrupt record must name itself, not crash its reader
            cause = error.__cause__ or error  # the store's wrapper repeats what the record names already
            return unreadable(_event_class(stored.topic), stored.originator_id, stored.originator_version,
                              stored.topic, describe(cause))
        if not isinstance(event, Event):
            return unreadable(None, stored.originator_id, stored.originator_version, stored.topic,
                              "not an actorbatch event")
        return event

    def import_raw(self, records: Sequence[Any]) -> None:
        """Record stored events exactly as given (topic and bytes), in order: replaying a log kept elsewhere."""
        self._app.recorder.insert_events(list(records))

    def close(self) -> None:
        if self._probe is not None:
            self._probe.close()
        self._app.close()


_CLASS_VERSIONS = {cls: getattr(cls, "class_version", 1) for cls in EVENTS.values()}


def _event_class(topic: str) -> type | None:
    return EVENTS.get(topic)
