"""What a batch server's actors need of the world beyond the node cores' ports: a log they can follow, and read
models to start from. A real server's composition root gives them the SQL store and views; the simulator its own."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from actorbatch.actors.outages import Failing
from actorbatch.domain.events import Event
from actorbatch.domain.jobs import JobState
from actorbatch.domain.notifications import Notification
from actorbatch.domain.quarantine import Problem
from actorbatch.domain.runs import Run
from actorbatch.domain.servers import Server
from actorbatch.domain.users import UserState
from actorbatch.node.ports import EventLog

Listener = Callable[[Sequence[Event]], None]


class NodeStore(EventLog, Failing, Protocol):
    def follow(self, after: int, limit: int) -> tuple[int, list[Event], int]:
        """Up to `limit` notifications after position `after`, skipping what this process appended (its listeners
        heard that at once): the new position, the other processes' events, and how many were read."""

    def unchanged(self) -> bool:
        """Whether certainly nothing was committed since the last call (False when it cannot tell cheaply)."""

    def listen(self, listener: Listener) -> None:
        """Call `listener` with every batch this process appends, once it is committed."""

    def unlisten(self, listener: Listener) -> None: ...


@dataclass(frozen=True)
class Seed:
    """What a starting server reads from the read models, all as of one log position."""

    position: int
    jobs: Sequence[JobState]
    runs: Sequence[Run]  # the active ones
    servers: Sequence[Server]
    problems: Sequence[Problem]  # quarantined aggregates not put to rest
    users: Sequence[UserState]
    deliveries: Sequence[Notification]  # the unfinished ones


class Seeds(Protocol):
    def seed(self) -> Seed: ...
