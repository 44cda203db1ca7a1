"""What a task body sees: its parameters, who and which attempt it is, a logger, progress and cancellation."""

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from actorbatch.store.urls import StoreUrl

MAX_LINES = 10_000
MAX_LINE_CHARS = 4_000


class RunLog:
    """The bounded, timestamped lines of one attempt; the executor ships them to the log in batches."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self._now = now
        self._lines: list[str] = []
        self._times: list[datetime] = []
        self._shipped = 0
        self._dropped = 0
        self._lock = threading.Lock()

    def write(self, line: str) -> None:
        at = self._now()
        with self._lock:
            if len(self._lines) >= MAX_LINES:
                self._dropped += 1
                return
            self._lines.append(line[:MAX_LINE_CHARS])
            self._times.append(at)

    def take(self, final: bool = False) -> tuple[tuple[str, ...], tuple[datetime, ...]]:
        """Lines not shipped yet, and when each was written; the final take also reports how many were dropped
        over the bound."""
        with self._lock:
            lines, times = self._lines[self._shipped:], self._times[self._shipped:]
            self._shipped = len(self._lines)
            if final and self._dropped:
                lines.append(f"[{self._dropped} more lines dropped: the run log keeps {MAX_LINES} per attempt]")
                times.append(self._now())
                self._dropped = 0
            return tuple(lines), tuple(times)


class TaskLogger:
    """`ctx.log.info("...")`: lines that go to the run log with their level."""

    def __init__(self, sink: RunLog) -> None:
        self._sink = sink

    def _emit(self, level: str, message: str, args: tuple[Any, ...]) -> None:
        self._sink.write(f"{level}: {message % args if args else message}")

    def write(self, line: str) -> None:
        """A raw line, e.g. a command's output."""
        self._sink.write(line)

    def debug(self, message: str, *args: Any) -> None:
        self._emit("DEBUG", message, args)

    def info(self, message: str, *args: Any) -> None:
        self._emit("INFO", message, args)

    def warning(self, message: str, *args: Any) -> None:
        self._emit("WARNING", message, args)

    def error(self, message: str, *args: Any) -> None:
        self._emit("ERROR", message, args)


@dataclass
class TaskContext:
    """Passed to every python task body: `def body(ctx: TaskContext) -> result`."""

    params: Mapping[str, Any]
    run_id: UUID
    job: str
    task: str
    attempt: int
    user: str
    log: TaskLogger
    store: StoreUrl | None = None  # the store of the server running the task (the maintenance job works on it)
    cancel_event: threading.Event = field(default_factory=threading.Event)
    progress_done: int = 0
    progress_total: int = 0

    def cancelled(self) -> bool:
        """True once the run was cancelled, the lease lost or the timeout reached: return soon."""
        return self.cancel_event.is_set()

    def progress(self, done: int, total: int) -> None:
        self.progress_done, self.progress_total = done, total
        self.log.info("progress %d/%d", done, total)
