"""Who may do what: the one policy every command, the Python API, the web console and the lease core share.

Pure decisions over privileges already folded from the log. A store is open (everyone counts as `admin`) until
the first `admin` grant closes it; from then on `admin` holds every privilege, built-in or an application's.
"""

from collections.abc import Iterable

from actorbatch.domain.events import Event
from actorbatch.domain.users import ADMIN, AccessClosed, UserEvent, UserState

# What each command needs, by the audit name of the event it writes. Reading needs nothing.
NEEDS = {
    "job.added": "job.manage", "job.replaced": "job.manage", "job.removed": "job.manage",
    "job.scheduled": "job.manage", "job.unscheduled": "job.manage", "job.backfill": "job.manage",
    "run.created": "job.run",  # run now or later, retry
    "run.cancelled": "run.cancel",  # of another user's run: everyone may cancel their own
    "server.drain_requested": "server.manage",
    "history.pruned": ADMIN,  # history prune and the store's upkeep (a dry run reads only)
    "user.granted": ADMIN, "user.revoked": ADMIN,
    "user.profile_set": ADMIN, "user.token_issued": ADMIN,  # of another user: one's own needs nothing
}


def holds(privileges: Iterable[str], needed: str, is_open: bool) -> bool:
    """Whether a user with `privileges` may do what needs `needed`."""
    if is_open:
        return True
    held = frozenset(privileges)
    return ADMIN in held or needed in held


def missing(privileges: Iterable[str], needed: Iterable[str], is_open: bool) -> str | None:
    """The first of `needed` (in the order given) that the user lacks, or None."""
    return next((p for p in needed if not holds(privileges, p, is_open)), None)


def needs(action: str, actor: str, owner: str | None = None) -> str | None:
    """The privilege `actor` needs to write `action` about something `owner` owns (a run, a user record); None:
    nothing (one's own run to cancel, one's own profile or token)."""
    if owner is not None and owner == actor and action in ("run.cancelled", "user.profile_set", "user.token_issued"):
        return None
    return NEEDS[action]


class Privileges:
    """Every user's privileges and whether the store is closed, folded from the log: what the lease core asks
    when a task would start. Folding an event twice (seeded, then heard again) changes nothing."""

    def __init__(self, users: Iterable[UserState] = (), closed: bool = False) -> None:
        self.users = {u.name: u for u in users}
        self.closed = closed

    def observe(self, event: Event) -> None:
        if isinstance(event, AccessClosed):
            self.closed = True
        elif isinstance(event, UserEvent):
            state = self.users.setdefault(event.name, UserState.named(event.name))
            if event.originator_version == state.version + 1:
                state.apply(event)

    def missing(self, user: str, needed: Iterable[str]) -> str | None:
        """The first of `needed` that `user` lacks (None: it may start)."""
        state = self.users.get(user)
        return missing(state.privileges if state else (), needed, is_open=not self.closed)
