"""What a server's metrics count, decided from the events it records and hears: sans-I/O, like the other cores.

Counters count this server's own appends (each server exports its own; sum them across servers): commits,
claims, retries (claims of a second or later attempt), lease losses (attempts this server reaped), task outcomes
and notification deliveries (events whose action starts with `notification.`). Claim latency is the time from a
run's due time to this server's first claim of one of its tasks.
"""

from collections import Counter, OrderedDict
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from actorbatch.domain.events import Event
from actorbatch.domain.runs import AttemptLost, RunCreated, TaskClaimed, TaskFailed, TaskSucceeded

MAX_PENDING = 100_000  # due times of runs not yet claimed by anyone, kept for the latency: the oldest go first


class Tally:
    """The counts behind the metrics; `latencies` are drained by whoever exports them."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.notifications: Counter[str] = Counter()
        self.latencies: list[float] = []
        self._due: OrderedDict[UUID, datetime] = OrderedDict()

    def heard(self, events: Sequence[Event]) -> None:
        """Events other processes recorded: runs become due; a run another server claimed needs no latency."""
        for event in events:
            if isinstance(event, RunCreated):
                self._remember(event.originator_id, event.due_at)
            elif isinstance(event, TaskClaimed):
                self._due.pop(event.originator_id, None)

    def recorded(self, events: Sequence[Event]) -> None:
        """Events this server appended in one commit."""
        self.counts["commits"] += 1
        for event in events:
            if isinstance(event, RunCreated):
                self._remember(event.originator_id, event.due_at)
            elif isinstance(event, TaskClaimed):
                self.counts["claims"] += 1
                self.counts["retries"] += event.attempt > 1
                due = self._due.pop(event.originator_id, None)
                if due is not None:
                    self.latencies.append(max(0.0, (event.timestamp - due).total_seconds()))
            elif isinstance(event, AttemptLost):
                self.counts["lease_losses"] += 1
            elif isinstance(event, TaskSucceeded | TaskFailed):
                self.outcomes["succeeded" if isinstance(event, TaskSucceeded) else "failed"] += 1
            elif event.action.startswith("notification."):
                self.notifications[event.action] += 1

    def _remember(self, run_id: UUID, due: datetime) -> None:
        self._due[run_id] = due
        if len(self._due) > MAX_PENDING:
            self._due.popitem(last=False)
