"""What the scheduler and the notifier hear, in one ordered channel: the log follower's news, and what this process
appended itself, the lease manager's claims and outcomes a moment late and together.

A busy lease manager appends a batch every step. Telling the scheduler and the notifier each batch woke both
threads every step, and each wake-up took the interpreter's lock (the GIL) from the lease manager, for events
neither needs at once (a run's end frees a queued fire or sends an alert; a few milliseconds later does the same):
gathered, a drain of 20,000 quick tasks takes 4% less CPU and 8% less time (docs/benchmarks.md). Everything else
reaches them at once, after what was held back, so that each hears every aggregate's events in order: a fold that
meets a later version first ignores it.
"""

import threading
from collections.abc import Sequence
from typing import Any

from actorbatch.actors.messages import Observed, Recipient, tell
from actorbatch.actors.timer import Timer
from actorbatch.domain.events import Event
from actorbatch.domain.runs import TaskEvent

ECHO_S = 0.02  # how long the lease manager's own events may wait to be told, gathered, to the scheduler and notifier


class Flush:
    """From the timer: tell what was held back."""


class Echo:
    """Stands for its recipients wherever a message goes to all of them (the follower's subscribers); also hears
    this process's appends (`heard`). A recipient of the timer too: its Flush tells what waited."""

    def __init__(self, recipients: Sequence[Recipient], timer: Timer) -> None:
        self.recipients, self.timer = list(recipients), timer
        self._held: list[Event] = []
        self._lock = threading.Lock()  # appends come from every actor's thread; order is kept under it

    def heard(self, events: Sequence[Event]) -> None:
        """This process appended `events`: attempts' claims and outcomes wait up to ECHO_S, together."""
        if all(isinstance(event, TaskEvent) for event in events):
            with self._lock:
                first = not self._held
                self._held.extend(events)
            if first:
                self.timer.after(ECHO_S, self, Flush())
        else:
            self.tell(Observed(events))

    def tell(self, message: Any) -> None:
        """What was held back, then `message`, to every recipient."""
        with self._lock:
            if self._held:
                held, self._held = self._held, []
                for recipient in self.recipients:
                    tell(recipient, Observed(held))
            if not isinstance(message, Flush):
                for recipient in self.recipients:
                    tell(recipient, message)

    def is_alive(self) -> bool:
        return True  # a recipient that died is dropped by `tell` (the supervisor stops the server)
