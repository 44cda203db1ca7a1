"""The one event log of the whole system: an eventsourcing application holding every aggregate.

Events are appended with optimistic concurrency (a version already taken raises Conflict, and the loser re-decides),
read back per aggregate, and read in order from the notification log, which is the bus between processes.
"""

import contextlib
import functools
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple, TypeVar
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    Mapper,
    OperationalError,
    PersistenceError,
    StoredEvent,
    Transcoder,
)
from eventsourcing.sqlite import SQLiteApplicationRecorder

from actorbatch.domain.events import Event
from actorbatch.domain.quarantine import describe, fold_stream, unreadable
from actorbatch.errors import ActorbatchError, Conflict, Moved, StoreFailed, StoreUnavailable
from actorbatch.store import notify, signing, transcoder
from actorbatch.store.outage import Breaker, first_line, is_fatal
from actorbatch.store.topics import EVENTS, StableTopicMapper
from actorbatch.store.transcoder import MsgpackTranscoder
from actorbatch.store.urls import StoreUrl, parse_url

A = TypeVar("A")
Listener = Callable[[Sequence[Event]], None]
SQLITE_LOCK_TIMEOUT_S = 30  # how long a SQLite writer waits for another one's transaction


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
                "SQLITE_LOCK_TIMEOUT": str(SQLITE_LOCK_TIMEOUT_S), "CREATE_TABLE": create_table}
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
        mapper = self._app.mapper
        assert isinstance(mapper, StableTopicMapper)
        self._mapper = mapper
        recorder = self._app.recorder
        self._sqlite = (_SqliteWriter(recorder, self.url.sqlite_target(), SQLITE_LOCK_TIMEOUT_S)
                        if isinstance(recorder, SQLiteApplicationRecorder) else None)
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
        self.append_if({}, *events)

    def append_if(self, unchanged: Mapping[UUID, int], *events: Event) -> None:
        """`append`, on condition that each aggregate of `unchanged` is still at the version given (0: it has no
        events): Moved, naming those that are not, and nothing written. The look and the insert are one
        transaction, in which no other append can commit (SQLite's write lock, PostgreSQL's table lock)."""
        if not events:
            return
        rows = self._mapper.encode_many(events)  # encoded before any lock is taken
        with self._guard():
            if self._sqlite is not None:
                moved = self._sqlite.insert(rows, unchanged)
            else:
                stored = [StoredEvent(originator_id=i, originator_version=v, topic=t, state=s) for i, v, t, s in rows]
                moved = self._insert(stored, unchanged)
        if moved:
            raise Moved(moved)
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

    def _insert(self, stored: list[StoredEvent], unchanged: Mapping[UUID, int]) -> frozenset[UUID]:
        """Insert through the recorder unless an aggregate of `unchanged` moved; returns those that moved. On
        PostgreSQL the look is made in the insert's transaction, under the lock that serialises appends."""
        recorder = self._app.recorder
        insert_if = getattr(recorder, "insert_if", None) if getattr(recorder, "appends_on_condition", False) else None
        if insert_if is not None:  # one round trip, on condition or not
            try:
                insert_if(stored, unchanged)  # see store.pgfactory.ConditionalRecorder
            except Moved as error:
                return error.moved
            return frozenset()
        moved = self._moved(unchanged)  # another recorder: a look just before the append, as a load would be
        if not moved:
            recorder.insert_events(stored)
        return moved

    def _moved(self, unchanged: Mapping[UUID, int]) -> frozenset[UUID]:
        """The aggregates of `unchanged` that are no longer at the version given (one read each)."""
        return frozenset(i for i, version in unchanged.items() if self._version(i) != version)

    def version(self, aggregate_id: UUID) -> int:
        """The aggregate's version in the log (0: it has no events)."""
        with self._guard():
            return self._version(aggregate_id)

    def _version(self, aggregate_id: UUID) -> int:
        found = self._app.recorder.select_events(aggregate_id, desc=True, limit=1)
        return found[0].originator_version if found else 0

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
            recorder = self._app.recorder
            if isinstance(recorder, SQLiteApplicationRecorder) and recorder.datastore.originator_id_type == "uuid":
                return _sqlite_notes(recorder, after, limit, until)
            return list(recorder.select_notifications(start=after, limit=limit, stop=until, inclusive_of_start=False))

    def follow(self, after: int, limit: int = 1000) -> tuple[int, list[Event], int]:
        """Like `read`, but skips (without decoding) what this process appended, which its listeners heard already.
        Returns the new position, the other processes' events, and how many notifications were read."""
        if self._own is None:
            self._own = set()
        self.follows += 1
        notes = self.read_raw(after, limit)
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
        return position, self.decode_many(events), len(notes)

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
        if self._sqlite is not None:
            self._sqlite.close()
        self._app.close()


_CLASS_VERSIONS = {cls: getattr(cls, "class_version", 1) for cls in EVENTS.values()}


class Stored(NamedTuple):
    """A stored event as `read_raw` gives it on SQLite: shaped like eventsourcing's notification, made cheaply."""

    id: int
    originator_id: UUID
    originator_version: int
    topic: str
    state: bytes


def _sqlite_notes(recorder: SQLiteApplicationRecorder, after: int, limit: int, until: int | None) -> list[Stored]:
    """What the recorder's `select_notifications` reads, without building a notification object and parsing an
    id per row: a rebuild reads a million (an aggregate's id recurs in each of its events)."""
    stop = "" if until is None else "AND rowid <= ? "
    statement = (f"SELECT rowid, originator_id, originator_version, topic, state FROM {recorder.events_table_name} "  # noqa: S608
                 f"WHERE rowid > ? {stop}ORDER BY rowid LIMIT ?")  # the table's fixed name
    with recorder.datastore.transaction(commit=False) as cursor:
        cursor.execute(statement, (after, limit) if until is None else (after, until, limit))
        rows = cursor.fetchall()
    return [Stored(row[0], _uuid(row[1]), row[2], row[3], row[4]) for row in rows]


@functools.lru_cache(maxsize=65_536)
def _uuid(text: str) -> UUID:
    return UUID(text)


class _SqliteWriter:
    """Appends to a SQLite log in one `BEGIN IMMEDIATE` transaction: the look at the aggregates a write relies on,
    then every row in one `executemany`, on a connection of its own.

    eventsourcing's SQLite recorder inserts one row per statement (to hand back each row's position, which the log
    does not use) in a deferred transaction, and has no way to read in the writing transaction. Taking the write
    lock first makes the look and the insert one step: no other writer commits between them, and the look's
    snapshot cannot go stale before the insert (which a deferred transaction reports as "database is locked").
    The rows, the connection's settings (WAL, SQLite's default `synchronous`, the lock timeout) and the errors
    are the recorder's own; its pool is left to the reads, whose checkout and return cost as much as the insert.
    """

    def __init__(self, recorder: SQLiteApplicationRecorder, target: str, lock_timeout_s: float) -> None:
        self.target, self.lock_timeout_s = target, lock_timeout_s
        self.insert_statement = recorder.insert_events_statement
        self.look_statement = (f"SELECT originator_id, MAX(originator_version) FROM {recorder.events_table_name} "  # noqa: S608
                               "WHERE originator_id IN ({}) GROUP BY originator_id")  # the table's fixed name
        self.table = recorder.events_table_name
        self._guarded: dict[int, str] = {}  # the conditional insert of one row, by the number of aggregates looked at
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # one transaction at a time on the connection (SQLite has one writer anyway)

    def insert(self, encoded: Sequence[tuple[UUID, int, str, bytes]], unchanged: Mapping[UUID, int]
               ) -> frozenset[UUID]:
        """Insert the rows unless an aggregate of `unchanged` moved; returns those that moved."""
        rows = [(i.hex, v, t, s) for i, v, t, s in encoded]
        with self._lock:
            try:
                conn = self._conn
                if conn is None:
                    conn = self._conn = sqlite3.connect(self.target, uri=True, timeout=self.lock_timeout_s,
                                                        isolation_level=None, check_same_thread=False)
                if len(rows) == 1:
                    return self._insert_one(conn, rows[0], unchanged)
                conn.execute("BEGIN IMMEDIATE")
                try:
                    moved = self._moved(conn, unchanged) if unchanged else frozenset()
                    if not moved:
                        conn.executemany(self.insert_statement, rows)
                except BaseException:
                    if conn.in_transaction:
                        conn.rollback()
                    raise
                if moved:
                    conn.rollback()
                else:
                    conn.commit()
                return moved
            except sqlite3.Error as error:
                self._drop()  # a fresh connection for the next write, whatever state this one is in
                raise _persistence_error(error) from error

    def _insert_one(self, conn: sqlite3.Connection, row: tuple[str, int, str, bytes], unchanged: Mapping[UUID, int]
                    ) -> frozenset[UUID]:
        """One row, in one statement (SQLite makes a statement its own transaction, and a statement that writes
        takes the write lock before it reads): the look is the statement's condition."""
        if not unchanged:
            conn.execute(self.insert_statement, row)
            return frozenset()
        statement = self._guarded.get(len(unchanged))
        if statement is None:
            look = f"(SELECT IFNULL(MAX(originator_version), 0) FROM {self.table} WHERE originator_id = ?) = ?"  # noqa: S608
            statement = self._guarded[len(unchanged)] = (
                f"INSERT INTO {self.table} SELECT ?, ?, ?, ? WHERE {' AND '.join([look] * len(unchanged))}")
        looks = [value for aggregate_id, version in unchanged.items() for value in (aggregate_id.hex, version)]
        if conn.execute(statement, (*row, *looks)).rowcount == 1:
            return frozenset()
        return self._moved(conn, unchanged) or frozenset(unchanged)  # which moved: versions only ever grow

    def _moved(self, conn: sqlite3.Connection, unchanged: Mapping[UUID, int]) -> frozenset[UUID]:
        ids = {aggregate_id.hex: aggregate_id for aggregate_id in unchanged}
        found = {ids[row[0]]: row[1]
                 for row in conn.execute(self.look_statement.format(",".join("?" * len(ids))), list(ids))}
        return frozenset(a for a, version in unchanged.items() if found.get(a, 0) != version)

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def _persistence_error(error: sqlite3.Error) -> PersistenceError:
    """The eventsourcing error for a sqlite3 one, as its recorder raises them (the store's guard names them)."""
    for raw, wrapped in ((sqlite3.IntegrityError, IntegrityError), (sqlite3.OperationalError, OperationalError),
                         (sqlite3.InterfaceError, InterfaceError)):
        if isinstance(error, raw):
            return wrapped(error)
    return PersistenceError(error)


def _event_class(topic: str) -> type | None:
    return EVENTS.get(topic)
