"""The messages the actors of one batch server exchange, and how one actor tells another."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

import pykka

from actorbatch.behaviours.leasing import Attempt, Key
from actorbatch.domain.events import Event
from actorbatch.frozen import frozen
from actorbatch.node.lease import Done


@frozen
class Observed:
    """Events recorded in the log, by anyone; from the follower, `read_at` says that everything recorded before
    that moment has now been heard (it was the time just before a read that reached the end of the log)."""

    events: Sequence[Event]
    read_at: datetime | None = None


@frozen
class Tick:
    """Time has passed: re-decide (due runs, retry delays, expired leases)."""


@frozen
class Beat:
    """Time to renew our leases with a heartbeat."""


@frozen
class Execute:
    attempts: Sequence[Attempt]


@frozen
class Abort:
    """Stop an attempt: its run was cancelled or its lease was lost."""

    key: Key
    reason: str


@frozen
class Finished:
    """From a worker thread to its pool: the body returned."""

    done: Done


@frozen
class Freed:
    """The thread of a timed-out attempt finally returned: its slot is free again."""

    key: Key


@frozen
class CaughtUp:
    """The follower has read the log up to where it stood when the server started."""


@frozen
class Poll:
    """Read the log for new events."""


@frozen
class Heard:
    """To the follower: another commit to the log was notified (PostgreSQL's LISTEN)."""


@frozen
class Listening:
    """To the follower: commit notifications started (True) or stopped (False) arriving."""

    on: bool


@frozen
class Due:
    """To the follower, from the timer: time for the read it planned (`token` names the plan; a later plan
    replaces it)."""

    token: int


@frozen
class Look:
    """To the follower, from the timer every `relaxed_s` (SQLite): time for a read, if it reads at that pace now."""


@frozen
class Drain:
    """Stop claiming; finish what runs."""


@frozen
class Connect:
    """Wiring, once every actor exists: the log follower to ask for a fresher read, and (to the lease manager) the
    executor pool it hands attempts to. Each needs the other's address."""

    follower: Any
    executor: Any = None


@frozen
class Fresh:
    """To the follower: read the log whole again (no sooner than a poll after the last read) and tell `subscriber`
    how far it was read: it has a lease to judge."""

    subscriber: Any


@frozen
class Busy:
    """Ask how many attempts still occupy a thread."""


class Recipient(Protocol):
    """Whom a message can be told: an actor's ref, or what stands for several (`actors.echo.Echo`)."""

    def tell(self, message: Any) -> None: ...

    def is_alive(self) -> bool: ...


def tell(ref: Recipient, message: Any) -> None:
    """Tell another actor of this server `message`. One that died is the supervisor's business (it stops the whole
    server): the message is dropped, and the teller goes on until it is stopped too."""
    try:  # not contextlib.suppress: this is on every message's path, and a try costs nothing until it catches
        ref.tell(message)
    except pykka.ActorDeadError:
        return
