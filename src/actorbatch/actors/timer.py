"""One thread that tells actors a message at a given time: the servers' only sleeper."""

import heapq
import itertools
import threading
from datetime import datetime, timedelta
from typing import Any

import pykka

from actorbatch.clock import Clock

MAX_SLEEP_S = 0.5  # re-read the clock at least this often (the wall clock may jump)


class Timer:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._heap: list[tuple[datetime, int, pykka.ActorRef[Any], Any, float | None]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name="actorbatch-timer", daemon=True)
        self._thread.start()

    def at(self, when: datetime, ref: pykka.ActorRef[Any], message: Any) -> None:
        self._push(when, ref, message, None)

    def every(self, interval_s: float, ref: pykka.ActorRef[Any], message: Any) -> None:
        self._push(self._clock.now() + timedelta(seconds=interval_s), ref, message, interval_s)

    def _push(self, when: datetime, ref: pykka.ActorRef[Any], message: Any, repeat_s: float | None) -> None:
        with self._cond:
            seq = next(self._seq)
            heapq.heappush(self._heap, (when, seq, ref, message, repeat_s))
            if self._heap[0][1] == seq:  # the new entry is the earliest: the sleeper must wake sooner
                self._cond.notify()

    def _loop(self) -> None:
        with self._cond:
            while not self._stopped:
                now = self._clock.now()
                while self._heap and self._heap[0][0] <= now:
                    _, _, ref, message, repeat_s = heapq.heappop(self._heap)
                    if ref.is_alive():
                        ref.tell(message)
                        if repeat_s is not None:
                            heapq.heappush(self._heap, (now + timedelta(seconds=repeat_s), next(self._seq), ref,
                                                        message, repeat_s))
                wait_s = MAX_SLEEP_S
                if self._heap:
                    wait_s = min(wait_s, (self._heap[0][0] - now).total_seconds())
                self._cond.wait(timeout=max(wait_s, 0))

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._thread.join()
