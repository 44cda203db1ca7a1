"""The simulator's only sense of time: a heap of (virtual time, sequence number, action), drained in order.

Time is whole microseconds since the start, so converting to and from the domain's datetimes is exact (datetimes
have microsecond resolution): a timer set for the moment a behaviour asked for fires exactly then, never a
microsecond early, which would make the behaviour ask for the same moment again, forever. The sequence number
makes ties deterministic: actions due at the same moment run in the order they were scheduled.
"""

import heapq
from collections.abc import Callable
from datetime import datetime, timedelta

Action = Callable[[], None]
US = timedelta(microseconds=1)
US_PER_S = 1_000_000


class RunawayLoop(Exception):
    """More steps than the configured bound: something keeps rescheduling itself."""


def us(seconds: float) -> int:
    return round(seconds * US_PER_S)


class Loop:
    """Virtual time and the actions waiting for it."""

    def __init__(self, epoch: datetime, max_steps: int) -> None:
        self.epoch = epoch
        self.now_us = 0
        self.steps = 0
        self.max_steps = max_steps
        self._heap: list[tuple[int, int, Action]] = []
        self._seq = 0

    def time(self, at_us: int) -> datetime:
        return self.epoch + timedelta(microseconds=at_us)

    def to_us(self, moment: datetime) -> int:
        return (moment - self.epoch) // US

    @property
    def now(self) -> datetime:
        return self.time(self.now_us)

    def at(self, at_us: int, action: Action) -> None:
        """Run `action` at `at_us` (or now, if that has passed)."""
        self._seq += 1
        heapq.heappush(self._heap, (max(at_us, self.now_us), self._seq, action))

    def run(self, until_us: int) -> None:
        """Run every action due by `until_us`, in order; then the clock reads `until_us`."""
        heap = self._heap
        while heap and heap[0][0] <= until_us:
            self.now_us, _, action = heapq.heappop(heap)
            self.steps += 1
            if self.steps > self.max_steps:
                raise RunawayLoop(f"more than {self.max_steps:,} steps")
            action()
        self.now_us = max(self.now_us, until_us)
