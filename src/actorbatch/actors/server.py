"""The batch server's composition root: picks the adapters (a SQL store and its read models, pykka threads, worker
threads, SMTP, PostgreSQL's LISTEN, a projector) and builds a Node on them; then supervises, drains and stops it.
"""

import logging
import os
import socket
import time
from typing import TYPE_CHECKING, Any, cast

import pykka

from actorbatch.actors.config import ServerConfig
from actorbatch.actors.follower import Pace, Projector
from actorbatch.actors.messages import Busy, Poll
from actorbatch.actors.node import Node, Plant
from actorbatch.actors.senders import ThreadSenders
from actorbatch.actors.timer import ThreadTimer
from actorbatch.clock import Clock, SystemClock, monotonic_s
from actorbatch.errors import StoreFailed, StoreUnavailable
from actorbatch.projections.process import ProjectorProcess
from actorbatch.projections.views import Views
from actorbatch.runners.pool import ThreadBodies
from actorbatch.store.eventstore import EventStore
from actorbatch.store.notify import LogListener
from actorbatch.store.sql import SqlDb

if TYPE_CHECKING:
    from actorbatch.actors.metrics import MetricsEndpoint

__all__ = ["BatchServer", "ServerConfig"]
log = logging.getLogger(__name__)
# On stop, after the running attempts ended: how long an unreachable store may keep their outcomes waiting.
# Past it the server exits 1; the attempts it could not report are lost attempts, retried by another server.
STORE_WAIT_S = 30.0
STOP_RETRY_S = 5.0  # and how long the last words of a stopping server may wait for it


class BatchServer:
    """A full batch server in this process: `start()`, then `stop()` (drains first) or use it as a context manager."""

    def __init__(self, url: str, config: ServerConfig, clock: Clock | None = None) -> None:
        self.url, self.config, self.clock = url, config, clock or SystemClock()
        self._started = False

    def start(self) -> "BatchServer":
        c = self.config
        self.store = store = EventStore(self.url)
        self.views = Views(store, SqlDb(store.url))
        self.views.check()
        self.timer = ThreadTimer(self.clock)
        postgres = store.url.kind == "postgresql"

        def bodies(finished: Any, timed_out: Any) -> ThreadBodies:
            return ThreadBodies(store, store.url, self.clock, c.most_threads, finished, timed_out)

        plant = Plant(store, self.views, self.clock, self.timer, _spawn, bodies,
                      ThreadSenders(c.smtp, store, self.clock), self.views,
                      Pace(c.poll_s, c.safety_poll_s, None if postgres else c.idle_poll_s),
                      socket.gethostname(), os.getpid())
        self.metrics: MetricsEndpoint | None = None
        hearers = []
        if c.metrics_port is not None:
            from actorbatch.actors import metrics  # prometheus-client, loaded only when asked for

            self.metrics = metrics.MetricsEndpoint(c.name, store, self.clock, c.metrics_host, c.metrics_port)
            hearers.append(self.metrics.actor)
            store.listen(self.metrics.recorded)
        self.node = Node(c, plant).start(hearers)
        self.server = self.node.server
        self.listener: LogListener | None = None
        if postgres:  # commit notifications wake the follower; SQLite has none, so there it polls
            self.listener = LogListener(store.url, self.node.doorbell.ring, self.node.listening).start()
        self._projector: pykka.ActorRef[Any] | None = None
        self._projector_process: ProjectorProcess | None = None
        if c.projector == "thread":
            self._projector = Projector.start(self.views)
            self.timer.every(0.5, self._projector, Poll())
        elif c.projector == "process":
            self._projector_process = ProjectorProcess(self.url)
        self._started = True
        return self

    def healthy(self) -> bool:
        """False once any actor of this server has died or its store cannot write: the supervisor then stops the
        whole server."""
        return self._projector_alive() and self.node.healthy()

    def check(self) -> str | None:
        """The supervisor's round (`server start` runs one every 0.5 s): "failed", "drained" (draining, and
        nothing runs any more) or None; see Node.check, which judges the node's health itself."""
        return self.node.check() if self._projector_alive() else "failed"

    def _projector_alive(self) -> bool:
        return self._started and (self._projector is None or self._projector.is_alive())

    @property
    def failure(self) -> StoreFailed | None:
        """Why the server had to stop, if its store cannot write (disk full, read-only)."""
        return self.store.failure

    def tend(self) -> None:
        """The supervisor's round: restart the projector child if it died (with backoff)."""
        if self._projector_process is not None:
            self._projector_process.tend()

    def _ask(self) -> tuple[int, bool, int]:
        return cast(tuple[int, bool, int], self.node.manager.ask(Busy()))

    def busy(self) -> int:
        """Attempts holding (or queued for) a thread."""
        return self._ask()[0]

    def drain(self, timeout_s: float | None = None) -> bool:
        """Stop claiming and wait for running attempts and deliveries to end; False if `timeout_s` ran out first."""
        self.node.drain()
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while (verdict := self.node.check()) is None:
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return verdict == "drained"

    def _unrecorded(self, wait_s: float) -> int:
        """Wait up to `wait_s` for the outcomes of ended attempts to reach the store; how many still have not."""
        deadline = monotonic_s() + wait_s
        while (pending := self._ask()[2]) and monotonic_s() < deadline:
            time.sleep(0.05)
        return pending

    def stop(self, drain: bool = True, reason: str = "stopped") -> None:
        """Stop the server (draining first); StoreUnavailable, after everything is stopped, if the store stayed
        unreachable and some outcomes or the stop itself could not be recorded."""
        if not self._started:
            return
        unrecorded = 0
        if drain and self.healthy():
            self.drain()
            unrecorded = self._unrecorded(STORE_WAIT_S)
        if self.listener is not None:
            self.listener.stop()
        for stopped in self.node.halt():
            stopped.get()
        if self._projector is not None:
            self._projector.stop()
        if self.metrics is not None:
            self.store.unlisten(self.metrics.recorded)
            self.metrics.stop()
        if self._projector_process is not None:
            self._projector_process.stop()
        recorded = self._record_stop(reason)
        self.views.db.close()
        self.store.close()
        self._started = False
        if unrecorded or not recorded:
            lost = f": {unrecorded} outcomes not recorded (their attempts will be retried)" if unrecorded else ""
            raise StoreUnavailable(f"server {self.config.name} stopped with the store unreachable{lost}")

    def _record_stop(self, reason: str) -> bool:
        """Say in the log that this server stopped, and bring the read models up to date; False if the store
        could not be reached within STOP_RETRY_S (the server is then judged by its missing heartbeats)."""
        stopped = self.server.stop(reason, self.clock.now())
        deadline = monotonic_s() + STOP_RETRY_S
        while True:
            try:  # again from the start: a connection broken by a database restart fails once, then reopens
                self.node.record_stop(stopped)
                self.views.catch_up()
                return True
            except StoreUnavailable:
                if monotonic_s() > deadline:
                    return False
                time.sleep(0.2)
            except StoreFailed:
                return False

    def __enter__(self) -> "BatchServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _spawn(actor: type[pykka.ThreadingActor], *args: Any) -> pykka.ActorRef[Any]:
    return actor.start(*args)
