"""A server's agenda: what to tell whom when, and again every so often. Its one sleeper (the real Timer thread, or
the simulator's event loop) asks it what is due and when to look next.
"""

import heapq
import itertools
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Generic, TypeVar

T = TypeVar("T")  # whom to tell
M = TypeVar("M")  # what


class Agenda(Generic[T, M]):
    def __init__(self) -> None:
        self._heap: list[tuple[datetime, int, T, M, float | None]] = []
        self._seq = itertools.count()

    def at(self, when: datetime, target: T, message: M, repeat_s: float | None = None) -> bool:
        """Tell `target` `message` at `when` (and every `repeat_s` after it was told); True if this entry is now
        the earliest, so the sleeper must wake sooner."""
        seq = next(self._seq)
        heapq.heappush(self._heap, (when, seq, target, message, repeat_s))
        return self._heap[0][1] == seq

    def due(self, now: datetime, alive: Callable[[T], bool] = lambda _: True) -> list[tuple[T, M]]:
        """What is due by `now`, in order; a repeating entry comes back `repeat_s` after now. Entries for targets
        no longer alive are dropped."""
        told = []
        while self._heap and self._heap[0][0] <= now:
            _, _, target, message, repeat_s = heapq.heappop(self._heap)
            if alive(target):
                told.append((target, message))
                if repeat_s is not None:
                    heapq.heappush(self._heap, (now + timedelta(seconds=repeat_s), next(self._seq), target, message,
                                                repeat_s))
        return told

    def next_at(self) -> datetime | None:
        return self._heap[0][0] if self._heap else None
