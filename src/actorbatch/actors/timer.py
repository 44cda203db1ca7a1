"""One thread that tells actors a message at a given time: the servers' only sleeper, over the node's Agenda."""

import threading
from datetime import datetime, timedelta
from typing import Any

import pykka

from actorbatch.clock import Clock
from actorbatch.node.agenda import Agenda

MAX_SLEEP_S = 0.5  # re-read the clock at least this often (the wall clock may jump)


class Timer:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._agenda: Agenda[pykka.ActorRef[Any], Any] = Agenda()
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name="actorbatch-timer", daemon=True)
        self._thread.start()

    def at(self, when: datetime, ref: pykka.ActorRef[Any], message: Any) -> None:
        with self._cond:
            if self._agenda.at(when, ref, message):
                self._cond.notify()  # the new entry is the earliest: the sleeper must wake sooner

    def every(self, interval_s: float, ref: pykka.ActorRef[Any], message: Any) -> None:
        with self._cond:
            if self._agenda.at(self._clock.now() + timedelta(seconds=interval_s), ref, message, interval_s):
                self._cond.notify()

    def _loop(self) -> None:
        with self._cond:
            while not self._stopped:
                now = self._clock.now()
                for ref, message in self._agenda.due(now, lambda ref: ref.is_alive()):
                    ref.tell(message)
                wait_s = MAX_SLEEP_S
                next_at = self._agenda.next_at()
                if next_at is not None:
                    wait_s = min(wait_s, (next_at - now).total_seconds())
                self._cond.wait(timeout=max(wait_s, 0))

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._thread.join()
