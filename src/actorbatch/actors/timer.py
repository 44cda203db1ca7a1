"""The servers' only sleeper: tells actors a message at a given time, over the node's Agenda.

`Timer` holds the agenda and tells what is due; who sleeps until then is its subclass's business: a thread here
(`ThreadTimer`), the event loop in the simulator.
"""

import threading
from datetime import datetime, timedelta
from typing import Any

from actorbatch.actors.messages import Recipient, tell
from actorbatch.clock import Clock
from actorbatch.node.agenda import Agenda

MAX_SLEEP_S = 0.5  # re-read the clock at least this often (the wall clock may jump)


class Timer:
    """`at` and `every` plan messages; `tell_due` tells what is due; `sooner` hears that the next is earlier now."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._agenda: Agenda[Recipient, Any] = Agenda()

    def at(self, when: datetime, ref: Recipient, message: Any) -> None:
        if self._agenda.at(when, ref, message):
            self.sooner()

    def after(self, delay_s: float, ref: Recipient, message: Any) -> None:
        self.at(self.clock.now() + timedelta(seconds=delay_s), ref, message)

    def every(self, interval_s: float, ref: Recipient, message: Any) -> None:
        if self._agenda.at(self.clock.now() + timedelta(seconds=interval_s), ref, message, interval_s):
            self.sooner()

    def tell_due(self, now: datetime) -> datetime | None:
        """Tell every live actor what is due by `now`; when the next entry is due (None: nothing planned)."""
        for ref, message in self._agenda.due(now, lambda ref: ref.is_alive()):
            tell(ref, message)  # one that died since it was asked is dropped
        return self._agenda.next_at()

    def sooner(self) -> None:
        """The earliest entry changed: the sleeper must wake sooner."""

    def stop(self) -> None:
        """No more wake-ups."""


class ThreadTimer(Timer):
    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name="actorbatch-timer", daemon=True)
        self._thread.start()

    def at(self, when: datetime, ref: Recipient, message: Any) -> None:
        with self._cond:
            super().at(when, ref, message)

    def every(self, interval_s: float, ref: Recipient, message: Any) -> None:
        with self._cond:
            super().every(interval_s, ref, message)

    def sooner(self) -> None:
        self._cond.notify()

    def _loop(self) -> None:
        with self._cond:
            while not self._stopped:
                now = self.clock.now()
                next_at = self.tell_due(now)
                wait_s = MAX_SLEEP_S if next_at is None else min(MAX_SLEEP_S, (next_at - now).total_seconds())
                self._cond.wait(timeout=max(wait_s, 0))

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._thread.join()
