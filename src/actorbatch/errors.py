"""Errors users see: each carries a one-line, specific message."""

from uuid import UUID


class ActorbatchError(Exception):
    """An operation failed for a reason the user can act on (CLI exit code 1)."""


class InvalidJob(ActorbatchError):
    """A job file or job definition breaks a rule; nothing was written."""


class NotFound(ActorbatchError):
    """A named job, run or server does not exist."""


class Conflict(ActorbatchError):
    """The operation lost a race or contradicts the current state."""


class Moved(Conflict):
    """A conditional append found an aggregate it relied on at another version than the one given; nothing was
    written. `moved` names those aggregates: the writer reads them afresh and decides again."""

    def __init__(self, moved: frozenset[UUID]) -> None:
        super().__init__("another writer changed what this write relied on")
        self.moved = moved


class StoreUnavailable(ActorbatchError):
    """The store did not answer (connection refused or lost, a timeout). Transient: try again later.

    An append that raises it may or may not have been recorded: the writer re-reads before it decides again.
    """


class StoreFailed(ActorbatchError):
    """The store answered but cannot take writes (disk full, read-only file): retrying will not help."""


class PermissionDenied(ActorbatchError):
    """The acting user lacks the privilege a command needs; only an audit record of the refusal was written."""
