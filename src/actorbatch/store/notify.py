"""Commit notifications on PostgreSQL: every commit to the log says so on one channel, and servers listen to it.

`actorbatch init` puts a trigger on the events table that calls `pg_notify` once per INSERT statement. PostgreSQL
delivers identical notifications of one transaction once, at commit, so a listener hears one notification per
commit, whoever wrote it (a server, the CLI, an application, a restore), and none for a transaction rolled back.
A store created before the trigger existed still works: its servers poll, and say so once.
"""

import contextlib
import logging
import os
import select
import threading
from collections.abc import Callable
from typing import Any

from actorbatch.errors import StoreUnavailable
from actorbatch.store.outage import Breaker, first_line
from actorbatch.store.urls import StoreUrl

log = logging.getLogger("actorbatch.store")
CHANNEL = "actorbatch_log"
TRIGGER = "actorbatch_notify"
TABLE = "actorbatch_events"
WAIT_S = 60.0  # the listening thread sleeps on its socket (and its stop pipe) up to this long at a time
RECHECK_S = 60.0  # a store without the trigger is asked again this often (`actorbatch init` may add it meanwhile)

INSTALL = (
    f"CREATE OR REPLACE FUNCTION {TRIGGER}() RETURNS trigger LANGUAGE plpgsql AS "
    f"$$ BEGIN PERFORM pg_notify('{CHANNEL}', ''); RETURN NULL; END $$",
    f"DROP TRIGGER IF EXISTS {TRIGGER} ON {TABLE}",
    f"CREATE TRIGGER {TRIGGER} AFTER INSERT ON {TABLE} FOR EACH STATEMENT EXECUTE FUNCTION {TRIGGER}()",
)


def connect(url: StoreUrl) -> Any:
    """A connection of its own, outside any pool, with TCP keepalives so that a silently lost peer is noticed."""
    import psycopg

    return psycopg.connect(url.conninfo(connect_timeout=5, keepalives=1, keepalives_idle=10, keepalives_interval=2,
                                        keepalives_count=3), autocommit=True)


def install(url: StoreUrl) -> None:
    """Create (or replace) the trigger that notifies each commit to the log; part of `actorbatch init`."""
    with connect(url) as conn, conn.transaction():
        for statement in INSTALL:
            conn.execute(statement)


def installed(conn: Any) -> bool:
    row = conn.execute("SELECT count(*) FROM pg_trigger WHERE tgname = %s AND tgrelid = to_regclass(%s)",
                       (TRIGGER, TABLE)).fetchone()
    return bool(row and row[0])


class Bell:
    """Wakes a sleeper at once, from another thread or from a signal handler: a pipe, so that ringing takes no lock
    (a handler that waited on a lock held by the code it interrupted would wait forever). Rings between two waits
    wake the next wait once."""

    def __init__(self) -> None:
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        os.set_blocking(self._w, False)

    def ring(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):  # full: it is ringing already; closed: nobody waits
            os.write(self._w, b"x")

    def wait(self, timeout_s: float) -> bool:
        """Sleep until rung or `timeout_s` passed; True if rung."""
        readable, _, _ = select.select([self._r], [], [], max(timeout_s, 0.0))
        if not readable:
            return False
        with contextlib.suppress(BlockingIOError):
            while os.read(self._r, 4096):
                pass
        return True

    def close(self) -> None:
        os.close(self._r)
        os.close(self._w)


class LogListener:
    """A thread holding a LISTEN connection. `heard()` is called for each commit notification, `state(on)` each
    time listening starts or stops working. A lost connection is opened again with the store breaker's backoff;
    the breaker logs each change (one line when it goes, one when it is back)."""

    def __init__(self, url: StoreUrl, heard: Callable[[], None], state: Callable[[bool], None]) -> None:
        self.url, self.heard, self.state = url, heard, state
        self.breaker = Breaker(f"{url} (listen connection)", "polling the log meanwhile; reconnecting")
        self.listening = False
        self.backend_pid: int | None = None  # of the listen connection, while there is one
        self.notifications = 0
        self._warned = False
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()  # written to by `stop`, so the sleeping thread sees it at once
        self._thread = threading.Thread(target=self._loop, name="actorbatch-listen", daemon=True)

    def start(self) -> "LogListener":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        os.write(self._wake_w, b"x")
        self._thread.join()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _loop(self) -> None:
        conn = None
        try:
            while not self._stop.is_set():
                if conn is None:
                    conn = self._open()
                    continue
                try:
                    readable, _, _ = select.select([conn.fileno(), self._wake_r], [], [], WAIT_S)
                    if self._wake_r in readable:
                        break
                    for _ in conn.notifies(timeout=0):  # what arrived; an idle wait costs no CPU at all
                        self.notifications += 1
                        self.heard()
                except Exception as error:  # noqa: BLE001 - whatever broke it, polling covers until it is back
                    self._close(conn)
                    conn = None
                    self._set(False)
                    self.breaker.failed(first_line(error))
        finally:
            if conn is not None:
                self._close(conn)
            self._set(False)

    def _open(self) -> Any:
        """The listening connection, or None (after waiting a while) if it cannot be had now."""
        wait_s = self.breaker.wait_s()
        if wait_s > 0:
            self._sleep(wait_s)
            return None
        try:
            self.breaker.admit()
        except StoreUnavailable:
            return None
        conn = None
        try:
            conn = connect(self.url)
            if not installed(conn):
                self._close(conn)
                if not self._warned:
                    self._warned = True
                    log.warning("store %s has no commit notifications (created by an older version; "
                                "`actorbatch init` adds them): polling the log", self.url)
                self._sleep(RECHECK_S)
                return None
            conn.execute(f"LISTEN {CHANNEL}")
        except Exception as error:  # noqa: BLE001 - as above: a connection that fails is retried with backoff
            if conn is not None:
                self._close(conn)
            self.breaker.failed(first_line(error))
            return None
        self.backend_pid = conn.info.backend_pid
        self.breaker.succeeded()
        self._set(True)
        return conn

    def _sleep(self, seconds: float) -> None:
        select.select([self._wake_r], [], [], seconds)

    def _set(self, on: bool) -> None:
        if on != self.listening:
            self.listening = on
            if not on:
                self.backend_pid = None
            self.state(on)

    @staticmethod
    def _close(conn: Any) -> None:
        with contextlib.suppress(Exception):  # closing a broken connection may fail too; it is gone either way
            conn.close()
