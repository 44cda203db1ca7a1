"""A thin SQL connection for the read models, speaking SQLite or PostgreSQL with the same statements.

Statements are written with `?` placeholders and the `INSERT ... ON CONFLICT` upsert, which both databases share.
"""

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Any

from actorbatch.errors import StoreFailed, StoreUnavailable
from actorbatch.store.outage import first_line, is_fatal
from actorbatch.store.urls import StoreUrl

Row = tuple[Any, ...]


class SqlDb:
    """One connection per thread; `transaction()` serialises writers the database's way."""

    def __init__(self, url: StoreUrl) -> None:
        self.url = url
        self.dialect = url.kind
        self._local = threading.local()
        self._opened: list[Any] = []
        self._lock = threading.Lock()

    def _connect(self) -> Any:
        if self.dialect == "sqlite":
            target = self.url.sqlite_target()
            conn = sqlite3.connect(target, timeout=30, isolation_level=None, check_same_thread=False, uri=True)
            if target == self.url.path:
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            return conn
        import psycopg

        return psycopg.connect(self.url.conninfo(connect_timeout=5), autocommit=True)

    @property
    def conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
            with self._lock:
                self._opened.append(conn)
        return conn

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Name a database that is gone or cannot write, and forget a broken connection so the next call opens
        a fresh one (a PostgreSQL restart breaks every open connection for good)."""
        try:
            yield
        except _connection_errors() as error:
            self.reconnect()
            reason = first_line(error)
            if is_fatal(reason):
                raise StoreFailed(f"store {self.url}: {reason}") from None
            raise StoreUnavailable(f"store {self.url} unreachable: {reason}") from None

    def reconnect(self) -> None:
        """Close this thread's connection (the next statement opens a fresh one), and with it whatever it alone
        held: a broken connection goes, and a rebuild's temporary tables at once, where dropping them walks every
        page."""
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with self._lock:
                if conn in self._opened:
                    self._opened.remove(conn)
            conn.close()

    def _sql(self, statement: str) -> str:
        if self.dialect == "sqlite":
            return statement
        return statement.replace("?", "%s").replace("BLOB", "BYTEA")

    def query(self, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        with self._guard():
            cursor = self.conn.execute(self._sql(statement), params)
            return [tuple(r) for r in cursor.fetchall()] if cursor.description else []

    def execute(self, statement: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; returns how many rows it changed."""
        with self._guard():
            return int(self.conn.execute(self._sql(statement), params).rowcount)

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            with self._guard():
                cursor = self.conn.cursor()
                cursor.executemany(self._sql(statement), rows)

    @contextmanager
    def transaction(self) -> Iterator["SqlDb"]:
        """A write transaction taken at once, so two catch-ups of one read model never interleave."""
        with self._guard():
            if self.dialect == "sqlite":
                with self._sqlite_block("BEGIN IMMEDIATE", "COMMIT", ("ROLLBACK",)):
                    yield self
            else:
                with self.conn.transaction():
                    yield self

    @contextmanager
    def savepoint(self) -> Iterator["SqlDb"]:
        """Inside a transaction: undo only what the block wrote if it raises."""
        if self.dialect == "sqlite":
            with self._sqlite_block("SAVEPOINT ab_block", "RELEASE ab_block",
                                    ("ROLLBACK TO ab_block", "RELEASE ab_block")):
                yield self
        else:
            with self.conn.transaction():  # nested in a transaction: a savepoint
                yield self

    @contextmanager
    def _sqlite_block(self, begin: str, end: str, undo: Sequence[str]) -> Iterator[None]:
        conn = self.conn
        conn.execute(begin)
        try:
            yield
        except BaseException:
            if conn in self._opened and conn.in_transaction:  # else a failed statement closed it
                for statement in undo:
                    conn.execute(statement)
            raise
        conn.execute(end)

    def columns(self, table: str) -> list[str]:
        """The column names of `table`, in order."""
        cursor = self.conn.execute(f"SELECT * FROM {table} LIMIT 0")  # noqa: S608 - fixed table names
        return [column[0] for column in cursor.description]

    def close(self) -> None:
        """Close the connections of every thread (call when those threads are done with it)."""
        with self._lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()
        self._local = threading.local()


@cache
def _connection_errors() -> tuple[type[Exception], ...]:
    """What either driver raises for a database that is gone, busy beyond the timeout, full or read-only
    (imported only when an error is being handled: psycopg costs a SQLite user's start time otherwise)."""
    import psycopg

    return (sqlite3.OperationalError, psycopg.OperationalError, psycopg.InterfaceError)
