"""Errors users see: each carries a one-line, specific message."""


class ActorbatchError(Exception):
    """An operation failed for a reason the user can act on (CLI exit code 1)."""


class InvalidJob(ActorbatchError):
    """A job file or job definition breaks a rule; nothing was written."""


class NotFound(ActorbatchError):
    """A named job, run or server does not exist."""


class Conflict(ActorbatchError):
    """The operation lost a race or contradicts the current state."""
