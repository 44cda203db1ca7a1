"""A thin SQL connection for the read models, speaking SQLite or PostgreSQL with the same statements.

Statements are written with `?` placeholders and the `INSERT ... ON CONFLICT` upsert, which both databases share.
"""

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

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
            conn = sqlite3.connect(self.url.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            return conn
        import psycopg

        return psycopg.connect(host=self.url.host, port=self.url.port, user=self.url.user,
                               password=self.url.password or None, dbname=self.url.dbname, autocommit=True)

    @property
    def conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
            with self._lock:
                self._opened.append(conn)
        return conn

    def _sql(self, statement: str) -> str:
        if self.dialect == "sqlite":
            return statement
        return statement.replace("?", "%s").replace("BLOB", "BYTEA")

    def query(self, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        cursor = self.conn.execute(self._sql(statement), params)
        return [tuple(r) for r in cursor.fetchall()] if cursor.description else []

    def execute(self, statement: str, params: Sequence[Any] = ()) -> None:
        self.conn.execute(self._sql(statement), params)

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            cursor = self.conn.cursor()
            cursor.executemany(self._sql(statement), rows)

    @contextmanager
    def transaction(self) -> Iterator["SqlDb"]:
        """A write transaction taken at once, so two catch-ups of one read model never interleave."""
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
