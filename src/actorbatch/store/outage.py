"""One breaker per store connection: how every part of a server rides out a store outage the same way.

While the store does not answer, calls fail fast with StoreUnavailable, and one probe per backoff interval
(doubling from FIRST_S up to CAP_S) goes through to find out whether it is back. Every actor simply tries again on
its next tick, so none of them sleeps, blocks a mailbox for long or loops on its own. The state changes (down,
back) are logged once each: an outage of an hour is two lines, not thousands.
"""

import threading
from collections.abc import Callable

from actorbatch.clock import monotonic_s
from actorbatch.errors import StoreUnavailable

FIRST_S = 0.1
CAP_S = 5.0


class Breaker:
    """Whether the store answers, and when to ask it again if it does not."""

    def __init__(self, what: str, meanwhile: str = "retrying", clock: Callable[[], float] = monotonic_s,
                 say: Callable[..., None] | None = None) -> None:
        """`clock` (seconds) and `say` (the log line of each change of state, a warning by default): the simulator
        passes its own."""
        self.what, self.meanwhile = what, meanwhile  # what the caller does while it is down, for the log line
        self._clock, self._say = clock, say or _warn
        self.down_since_s: float | None = None
        self._delay_s = FIRST_S
        self._probe_at_s = 0.0
        self._reason = ""
        self._lock = threading.Lock()

    def admit(self) -> None:
        """Let a call through, or raise StoreUnavailable at once while the store is down and no probe is due."""
        with self._lock:
            if self.down_since_s is None:
                return
            now = self._clock()
            if now < self._probe_at_s:
                raise StoreUnavailable(f"store {self.what} unreachable: {self._reason}")
            self._probe_at_s = now + self._delay_s  # this call is the probe: the others keep failing fast
            self._delay_s = min(self._delay_s * 2, CAP_S)

    def wait_s(self) -> float:
        """How long until the next probe may go through (0 while the store answers)."""
        with self._lock:
            return 0.0 if self.down_since_s is None else max(0.0, self._probe_at_s - self._clock())

    def failed(self, reason: str) -> StoreUnavailable:
        """A call found the store unreachable; returns the error to raise."""
        with self._lock:
            self._reason = reason
            if self.down_since_s is None:
                self.down_since_s = self._clock()
                self._delay_s, self._probe_at_s = FIRST_S, self.down_since_s + FIRST_S
                self._say("store %s unreachable: %s; %s", self.what, reason, self.meanwhile)
        return StoreUnavailable(f"store {self.what} unreachable: {reason}")

    def succeeded(self) -> None:
        """A call got an answer (a refusal such as a conflict counts too)."""
        if self.down_since_s is None:  # the common case: no lock
            return
        with self._lock:
            if self.down_since_s is not None:
                self._say("store %s reachable again after %.1f s", self.what, self._clock() - self.down_since_s)
                self.down_since_s = None


# A store that answers with one of these cannot take writes until someone acts: not an outage to wait out.
_FATAL = ("disk is full", "readonly", "read-only", "disk i/o error", "unable to open", "no space left")


def is_fatal(reason: str) -> bool:
    return any(words in reason.lower() for words in _FATAL)


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _warn(message: str, *args: object) -> None:
    """A warning on the store's logger, loaded when first needed: a listing never meets an outage."""
    import logging

    logging.getLogger("actorbatch.store").warning(message, *args)
