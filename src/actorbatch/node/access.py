"""Checking a command against the policy before it writes: the privileges as the log has them, and the refusal.

Every write a person makes (CLI, Python API, web console) passes `Guard.check` in `node.commands`, so the check
lives in one place; a refusal writes one `access.denied` event, for the audit trail, and nothing else.
"""

from collections.abc import Callable
from uuid import UUID

from actorbatch.clock import Clock
from actorbatch.domain import access
from actorbatch.domain.users import ACCESS_ID, AccessDenied, AccessState, UserState, user_id
from actorbatch.errors import PermissionDenied
from actorbatch.node.ports import EventLog


class Guard:
    """The privileges of users as the log has them now, and the refusal of what they may not do."""

    def __init__(self, log: EventLog, clock: Clock, new_id: Callable[[], UUID]) -> None:
        self.log, self.clock, self.new_id = log, clock, new_id
        self._closed = False  # a store once closed stays closed: then it need not be asked again
        self._records: dict[str, UserState] = {}  # as `vouch` last read them; every use is checked (see there)
        self._seen_open = False  # `vouch` read the store as open; every use is checked (see there)

    def is_open(self) -> bool:
        """Open until the first `admin` grant: every user then counts as admin."""
        if not self._closed:
            self._closed = self.log.load(AccessState, ACCESS_ID) is not None
        return not self._closed

    def record(self, name: str) -> UserState:
        """The user's record (an empty one, named, if there is none yet)."""
        return self.log.load(UserState, user_id(name)) or UserState.named(name)

    def holds(self, user: str, privilege: str) -> bool:
        if self.is_open():  # one read, and while the store is open (most stores) the only one
            return True
        return access.holds(self.record(user).privileges, privilege, is_open=False)

    def check(self, user: str, action: str, subject: str, *, owner: str | None = None, job: str = "") -> None:
        """Let `user` write `action` about `subject` (owned by `owner`), or record the refusal and raise
        PermissionDenied: `permission denied: USER lacks PRIVILEGE`."""
        needed = access.needs(action, user, owner)
        if needed is None or self.holds(user, needed):
            return
        self.refuse(user, needed, action, subject, job)

    def vouch(self, user: str, action: str, subject: str, *, owner: str | None = None, job: str = ""
              ) -> dict[UUID, int]:
        """`check`, from what an earlier call read where it can. Returns the aggregates the decision rests on, each
        with the version it was read at: the caller appends on condition that none has moved since
        (`EventStore.append_if`), and on `Moved` calls `forget` and decides again. So a grant, a revocation or the
        store's closing that commits before the append counts, as it does for `check`. A refusal is never decided
        from memory: the records are read afresh first, and it is recorded as `check` records it."""
        needed = access.needs(action, user, owner)
        if needed is None:
            return {}
        for fresh in (False, True):
            if fresh:
                self.forget()
            if not self._closed and not self._seen_open:
                self._seen_open = self.is_open()
            if self._seen_open:  # open when last read: the append checks it still has no event
                return {ACCESS_ID: 0}
            record = self._records.get(user)
            if record is None:
                record = self._records[user] = self.record(user)
            if access.holds(record.privileges, needed, is_open=False):
                return {user_id(user): record.version}
        self.refuse(user, needed, action, subject, job)
        raise AssertionError("refuse raises")  # pragma: no cover

    def forget(self) -> None:
        """Drop what `vouch` remembers: the next decision reads the log."""
        self._records.clear()
        self._seen_open = False

    def refuse(self, user: str, privilege: str, action: str, subject: str, job: str = "") -> None:
        self.log.append(AccessDenied(originator_id=self.new_id(), originator_version=1, timestamp=self.clock.now(),
                                     user=user, privilege=privilege, attempted=action, subject=subject, job=job))
        raise PermissionDenied(f"permission denied: {user} lacks {privilege}")
