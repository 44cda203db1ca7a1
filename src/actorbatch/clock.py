"""The one gateway to wall-clock time and fresh ids, so the same code runs in real time and in simulation."""

import os
import secrets
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Where the current time comes from; aware UTC datetimes only."""

    def now(self) -> datetime: ...


class SystemClock:
    """Real time."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """Time that moves only when told to: tests and the simulator own it."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)

    def set(self, moment: datetime) -> None:
        with self._lock:
            self._now = moment


def monotonic_s() -> float:
    """Seconds on a clock that never goes back, for measuring durations and timeouts."""
    return time.monotonic()


def random_id() -> uuid.UUID:
    """A fresh run id for an on-demand run (scheduled runs use deterministic ids instead)."""
    return uuid.uuid4()


def random_ids(count: int) -> list[uuid.UUID]:
    """`count` fresh ids as `random_id` makes them (`uuid4`), from one read of the OS's randomness."""
    data = os.urandom(16 * count)
    return [uuid.UUID(bytes=data[start:start + 16], version=4) for start in range(0, 16 * count, 16)]


def random_secret() -> str:
    """256 random bits, URL-safe: an API token's secret, or the salt its hash is kept with."""
    return secrets.token_urlsafe(32)
