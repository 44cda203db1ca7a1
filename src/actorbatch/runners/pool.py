"""Bodies on worker threads: the real `Bodies` of a server's executor pool, and the run-log streams of the attempts
they run. (The simulator's bodies take virtual time instead; the executor actor and its core are the same.)"""

import contextlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from actorbatch.behaviours.leasing import Attempt, Key
from actorbatch.clock import Clock, monotonic_s
from actorbatch.domain.events import log_id
from actorbatch.domain.runs import LogWritten
from actorbatch.errors import Conflict
from actorbatch.node.lease import Done
from actorbatch.node.ports import EventLog
from actorbatch.runners.context import RunLog, TaskContext, TaskLogger
from actorbatch.runners.python import TaskError, run_python
from actorbatch.runners.python import exit_status as exit_status_of
from actorbatch.runners.shell import run_shell
from actorbatch.store.urls import StoreUrl


class LogStream:
    """The run-log stream of one attempt; shipping is serialised so its versions stay consecutive.

    Lines the store did not take (an outage) are kept, in order, and sent again as the same event: only this
    stream writes under its id, so a conflict then means an earlier try was recorded after all.
    """

    def __init__(self, attempt: Attempt, clock: Clock) -> None:
        self.attempt, self.lines, self.version = attempt, RunLog(clock.now), 0
        self._unsent: tuple[tuple[str, ...], tuple[datetime, ...]] = ((), ())
        self._lock = threading.Lock()

    def ship(self, store: EventLog, clock: Clock, final: bool = False) -> None:
        with self._lock:
            if self._unsent[0]:
                self._send(store, clock)
            self._unsent = self.lines.take(final)
            if self._unsent[0]:
                self._send(store, clock)

    def _send(self, store: EventLog, clock: Clock) -> None:
        a = self.attempt
        with contextlib.suppress(Conflict):
            store.append(LogWritten(originator_id=log_id(a.run_id, a.task, a.attempt),
                                    originator_version=self.version + 1, timestamp=clock.now(),
                                    run_id=a.run_id, task=a.task, attempt=a.attempt, lines=self._unsent[0],
                                    times=self._unsent[1]))
        self.version += 1
        self._unsent = ((), ())


class ThreadBodies:
    """Runs each attempt's body on a worker thread; `finished` hears every return, `timed_out` every timeout."""

    def __init__(self, store: EventLog, url: StoreUrl, clock: Clock, threads: int, finished: Callable[[Done], None],
                 timed_out: Callable[[Key], None]) -> None:
        self.store, self.url, self.clock = store, url, clock
        self.finished, self.timed_out = finished, timed_out
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="actorbatch-task")
        self._running: dict[Key, tuple[TaskContext, LogStream]] = {}

    def run(self, a: Attempt) -> None:
        stream = LogStream(a, self.clock)
        ctx = TaskContext(params=a.params, run_id=a.run_id, job=a.job, task=a.task, attempt=a.attempt,
                          user=a.user, log=TaskLogger(stream.lines), store=self.url)
        self._running[a.key] = (ctx, stream)
        self._pool.submit(self._execute, a, ctx, stream)

    def cancel(self, attempt: Attempt) -> None:
        entry = self._running.get(attempt.key)
        if entry is not None:
            entry[0].cancel_event.set()

    def time_out(self, attempt: Attempt, after_s: float) -> None:
        timer = threading.Timer(after_s, self.timed_out, (attempt.key,))
        timer.daemon = True
        timer.start()

    def ship(self) -> None:
        """Send what the running bodies printed since the last time."""
        for _, stream in list(self._running.values()):
            stream.ship(self.store, self.clock)

    def stop(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _execute(self, a: Attempt, ctx: TaskContext, stream: LogStream) -> None:
        exit_status: str | None = None
        result = None
        wait_s = (a.starts_at - self.clock.now()).total_seconds()
        if wait_s > 0:  # claimed a moment early, to start exactly when due
            time.sleep(wait_s)
        started_s = monotonic_s()
        try:
            if a.run is not None:
                result = run_python(a.run, ctx)
            else:
                assert a.command is not None
                run_shell(a.command, ctx, a.timeout_s, a.os_user)
        except TaskError as error:
            exit_status = str(error)
        except BaseException as error:  # noqa: BLE001 - nothing may end the worker thread without a report
            exit_status = f"internal error: {exit_status_of(error)}"
        with contextlib.suppress(Exception):  # losing log lines must not lose the outcome
            stream.ship(self.store, self.clock, final=True)
        self._running.pop(a.key, None)
        self.finished(Done(a, exit_status, result, elapsed_s=monotonic_s() - started_s))
