"""Users as the log knows them: a profile (e-mail address), privileges, and the hash of their current API token.

Each user is one aggregate, named by the user's name. Who may do what is decided in `domain.access`; this module
only records it. Every event carries `user`, the acting user, who may differ from `name`, the user it is about.
"""

import base64
import hashlib
import hmac
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from actorbatch.domain.events import NAMESPACE, Event
from actorbatch.frozen import frozen

ADMIN = "admin"
BUILT_IN = (ADMIN, "job.manage", "job.run", "run.cancel", "server.manage")
# The one aggregate that says the store is closed: created (version 1, so once) with the first `admin` grant.
ACCESS_ID = uuid5(NAMESPACE, "access-control")


def user_id(name: str) -> UUID:
    return uuid5(NAMESPACE, f"user:{name}")


@frozen
class UserEvent(Event):
    """An event of the User aggregate: `name` is whose record it is, `user` who did it."""

    name: str
    user: str


@frozen
class ProfileSet(UserEvent):
    ACTION = "user.profile_set"
    email: str | None


@frozen
class PrivilegesGranted(UserEvent):
    ACTION = "user.granted"
    privileges: tuple[str, ...]


@frozen
class PrivilegesRevoked(UserEvent):
    ACTION = "user.revoked"
    privileges: tuple[str, ...]


@frozen
class TokenIssued(UserEvent):
    """A new API token: only its salted hash is kept; it replaces (revokes) the user's previous one."""

    ACTION = "user.token_issued"
    salt: str
    digest: str


@frozen
class AccessClosed(Event):
    """From this event on, every command is checked (before it, the store is open: everyone counts as admin)."""

    ACTION = "access.closed"
    user: str


@frozen
class AccessDenied(Event):
    """A refused command: the only thing it writes. Its own aggregate (a fresh id, version 1), never contended."""

    ACTION = "access.denied"
    user: str
    privilege: str
    attempted: str  # the audit name of what was refused, e.g. `job.added`
    subject: str  # the job, run, server or user it was about
    job: str = ""


class UserState:
    """One user's profile, privileges and current token hash, folded from their events."""

    def __init__(self) -> None:
        self.id: UUID = UUID(int=0)
        self.version = 0
        self.name = ""
        self.email: str | None = None
        self.privileges: frozenset[str] = frozenset()
        self.salt: str | None = None
        self.digest: str | None = None

    def apply(self, event: UserEvent) -> None:
        self.id, self.version, self.name = event.originator_id, event.originator_version, event.name
        if isinstance(event, ProfileSet):
            self.email = event.email
        elif isinstance(event, PrivilegesGranted):
            self.privileges |= frozenset(event.privileges)
        elif isinstance(event, PrivilegesRevoked):
            self.privileges -= frozenset(event.privileges)
        elif isinstance(event, TokenIssued):
            self.salt, self.digest = event.salt, event.digest

    def event(self, cls: type[UserEvent], user: str, now: datetime, **fields: Any) -> UserEvent:
        """The next event of this user's record (`name` must be set for a user with no record yet)."""
        return cls(originator_id=user_id(self.name), originator_version=self.version + 1, timestamp=now,
                   name=self.name, user=user, **fields)

    def profile(self) -> dict[str, Any]:
        """The `user list --json` entry."""
        return {"name": self.name, "privileges": sorted(self.privileges), "email": self.email}

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "version": self.version, "name": self.name, "email": self.email,
                "privileges": sorted(self.privileges), "salt": self.salt, "digest": self.digest}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "UserState":
        state = cls()
        state.id, state.version, state.name, state.email = data["id"], data["version"], data["name"], data["email"]
        state.privileges, state.salt, state.digest = frozenset(data["privileges"]), data["salt"], data["digest"]
        return state

    @classmethod
    def named(cls, name: str) -> "UserState":
        state = cls()
        state.name = name
        return state


class AccessState:
    """Whether the store is closed: the fold of `AccessClosed`."""

    def __init__(self) -> None:
        self.version = 0

    def apply(self, event: AccessClosed) -> None:
        self.version = event.originator_version


# ---- API tokens: `<the user's name, base64>.<secret>`, so a token names whose record to check it against ----


def token_digest(salt: str, secret: str) -> str:
    """The salted hash kept of a token's secret (the secret has 256 random bits: one round of SHA-256 suffices)."""
    return hashlib.sha256(f"{salt}:{secret}".encode()).hexdigest()


def make_token(name: str, secret: str) -> str:
    return f"{base64.urlsafe_b64encode(name.encode()).decode().rstrip('=')}.{secret}"


def token_parts(token: str) -> tuple[str, str] | None:
    """(user name, secret) of a well-formed token, else None."""
    encoded, dot, secret = token.strip().rpartition(".")
    if not dot or not encoded or not secret:
        return None
    try:
        name = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    return name, secret


def token_matches(state: UserState, secret: str) -> bool:
    if state.salt is None or state.digest is None:
        return False
    return hmac.compare_digest(token_digest(state.salt, secret), state.digest)
