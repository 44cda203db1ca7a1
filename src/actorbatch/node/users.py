"""What a person writes about users: profiles, grants and revocations, API tokens; and checking a token.

Each write passes the same Guard as every other command. The first grant of `admin` also closes the store (one
`access.closed` event, in the same transaction): from then on every command is checked.
"""

from collections.abc import Iterable

from actorbatch.domain.events import Event
from actorbatch.domain.limits import check_email, check_privilege, check_user
from actorbatch.domain.users import (
    ACCESS_ID,
    ADMIN,
    AccessClosed,
    PrivilegesGranted,
    PrivilegesRevoked,
    ProfileSet,
    TokenIssued,
    UserState,
    make_token,
    token_digest,
    token_matches,
    token_parts,
    user_id,
)
from actorbatch.errors import ActorbatchError, InvalidJob
from actorbatch.node.access import Guard

MAX_PRIVILEGES = 100  # named in one grant or revoke


class UserCommands:
    """The user writes of `user`, checked by `guard`."""

    def __init__(self, guard: Guard, user: str) -> None:
        self.guard, self.user = guard, user

    def set_email(self, name: str, email: str | None) -> None:
        """Set (or, with None, clear) the e-mail address of `name`'s profile: one's own, or anyone's as admin."""
        name = check_user(name, "USER")
        email = None if email is None else check_email(email, "--email")
        self.guard.check(self.user, ProfileSet.ACTION, name, owner=name)
        record = self.guard.record(name)
        self.guard.log.append(record.event(ProfileSet, self.user, self.guard.clock.now(), email=email))

    def grant(self, name: str, privileges: Iterable[str]) -> None:
        """Grant privileges (admin only, but anyone while the store is open); the first `admin` grant closes it."""
        name, names = check_user(name, "USER"), _privileges(privileges)
        self.guard.check(self.user, PrivilegesGranted.ACTION, name)
        now = self.guard.clock.now()
        events: list[Event] = [self.guard.record(name).event(PrivilegesGranted, self.user, now, privileges=names)]
        if ADMIN in names and self.guard.is_open():
            events.append(AccessClosed(originator_id=ACCESS_ID, originator_version=1, timestamp=now, user=self.user))
        self.guard.log.append(*events)

    def revoke(self, name: str, privileges: Iterable[str]) -> None:
        name, names = check_user(name, "USER"), _privileges(privileges)
        self.guard.check(self.user, PrivilegesRevoked.ACTION, name)
        record = self.guard.record(name)
        if record.version == 0:
            raise ActorbatchError(f"user {name!r} has no privileges to revoke")
        self.guard.log.append(record.event(PrivilegesRevoked, self.user, self.guard.clock.now(), privileges=names))

    def issue_token(self, name: str, secret: str, salt: str) -> str:
        """A new API token for `name` (one's own, or anyone's as admin), replacing the previous one. Only the
        salted hash of `secret` is recorded; the token is returned, to be shown once."""
        name = check_user(name, "USER")
        self.guard.check(self.user, TokenIssued.ACTION, name, owner=name)
        record = self.guard.record(name)
        self.guard.log.append(record.event(TokenIssued, self.user, self.guard.clock.now(), salt=salt,
                                           digest=token_digest(salt, secret)))
        return make_token(name, secret)


def token_user(guard: Guard, token: str) -> str | None:
    """The user whose current token this is; None for anything else (malformed, revoked, unknown)."""
    parts = token_parts(token)
    if parts is None:
        return None
    name, secret = parts
    try:
        check_user(name, "token")
    except InvalidJob:
        return None
    record = guard.log.load(UserState, user_id(name))
    return name if record is not None and token_matches(record, secret) else None


def _privileges(privileges: Iterable[str]) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(check_privilege(p, "PRIVILEGE") for p in privileges))
    if not names:
        raise InvalidJob("PRIVILEGE: name at least one privilege")
    if len(names) > MAX_PRIVILEGES:
        raise InvalidJob(f"PRIVILEGE: at most {MAX_PRIVILEGES} in one command, got {len(names)}")
    return names
