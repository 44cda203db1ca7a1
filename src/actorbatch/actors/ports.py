"""What a batch server's actors need of the world beyond the node cores' ports: a log they can follow, and read
models to start from. A real server's composition root gives them the SQL store and views; the simulator its own."""

from collections.abc import Callable, Sequence
from typing import Protocol

from actorbatch.actors.outages import Failing
from actorbatch.domain.events import Event
from actorbatch.node.ports import EventLog, Seed

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


class Seeds(Protocol):
    def seed(self) -> Seed: ...
