"""The ports a node core talks to the world through; real servers and the simulator each implement them."""

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Protocol, TypeVar
from uuid import UUID

from actorbatch.behaviours.leasing import Attempt
from actorbatch.domain.events import Event
from actorbatch.domain.jobs import JobState
from actorbatch.domain.notifications import Notification
from actorbatch.domain.quarantine import Problem
from actorbatch.domain.runs import Run
from actorbatch.domain.servers import Server
from actorbatch.domain.users import UserState
from actorbatch.frozen import frozen

A = TypeVar("A")
Report = Callable[[Iterable[Problem]], None]  # aggregates found quarantined: the process names each once


class EventLog(Protocol):
    """The one log: `append` records events in one transaction or raises Conflict (a version is taken). Any call
    may raise StoreUnavailable while the store is away; an append that does may or may not have been recorded."""

    def append(self, *events: Event) -> None: ...

    def append_if(self, unchanged: Mapping[UUID, int], *events: Event) -> None:
        """`append`, on condition that each aggregate of `unchanged` is still at the version given (0: it has no
        events), looked at in the append's own transaction: Moved, naming those that are not, and nothing written."""

    def load(self, factory: Callable[[], A], aggregate_id: UUID) -> A | None: ...

    def events(self, aggregate_id: UUID, after_version: int = 0) -> Sequence[Event]: ...

    def last(self, aggregate_id: UUID) -> Event | None:
        """The aggregate's latest event (None if it has none): one read, however long its stream."""

    def recorded(self, event: Event) -> bool:
        """Whether this very event is in the log: the answer to an append whose reply an outage swallowed."""


class Wakeup(Protocol):
    """How a core gets control back: at a time, or right after the message it is handling."""

    def wake_at(self, when: datetime) -> None:
        """Call the core's `tick` when the process's clock reads `when` (at once, after what is queued, if past)."""

    def again(self) -> None:
        """Call the core's `step` once the message being handled is in."""


class Outbox(Wakeup, Protocol):
    """What the lease core asks of its process besides waking: run or stop bodies, or give up."""

    def execute(self, attempts: Sequence[Attempt]) -> None:
        """Run these bodies: one call per step, so a step's claims cost the executor one message."""

    def abort(self, attempt: Attempt, reason: str) -> None: ...

    def fail(self, reason: str) -> None:
        """The process cannot go on (another process took its name, say): stop it, exit 1."""

    def read(self) -> None:
        """A lease may have run out since the log was last read whole: have it read again (the core's `read_at`
        moves on, and a step follows)."""


@frozen
class Seed:
    """What a starting server reads from the read models, all as of one log position."""

    position: int
    jobs: Sequence[JobState]
    runs: Sequence[Run]  # the active ones
    servers: Sequence[Server]
    problems: Sequence[Problem]  # quarantined aggregates not put to rest
    users: Sequence[UserState]
    deliveries: Sequence[Notification]  # the unfinished ones
