"""At most one live attempt per task: the simulator knows which server is executing which attempt, at every moment.

An attempt is live from the moment its server hands it to a thread until its body ends, is aborted, or dies with
its server; a paused server's attempts stay live, frozen. A second attempt of a task may start while an older one
is live only if the older one's holder stopped honouring its lease (its last heartbeat, in true time, ran out:
it was paused or its writes failed). Leases are instants on the holder's clock and judged on the reaper's, so with
clocks that agree only within `skew_s` a lease may be reaped that much early: that much is allowed. Then the
holder must notice as soon as it can act again: the older attempt has to end within `notice_s` of its holder
running again, or this checker fails.
"""

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from uuid import UUID

from actorbatch.behaviours.leasing import Attempt, Key
from actorbatch.domain.events import Event
from actorbatch.domain.runs import TaskClaimed
from actorbatch.domain.servers import ServerHeartbeat, ServerStarted, ServerStopped
from simulations.checkers import CheckFailed
from simulations.eventloop import Loop, us

CHECKER = "one-live-attempt"


class LiveAttempts:
    def __init__(self, loop: Loop, skews_us: Mapping[str, int], notice_s: float,
                 paused_until_us: Callable[[str], int]) -> None:
        self.loop, self.skews_us, self.notice_us = loop, skews_us, us(notice_s)
        self.skew_us = max(skews_us.values(), default=0) - min(skews_us.values(), default=0)
        self.paused_until_us = paused_until_us
        self.live: dict[Key, dict[int, str]] = {}  # (run, task) -> attempt -> the server executing it
        self.overlaps = 0  # second attempts started while a lapsed holder's attempt was still live
        self._claims: dict[tuple[UUID, str, int], datetime] = {}  # an attempt's own lease, from its claim
        self._beats: dict[str, datetime] = {}  # a server's leases last until at least this (its clock)
        self._names: dict[UUID, str] = {}  # server id -> name

    def appended(self, events: Sequence[Event]) -> None:
        """Follow the leases the log grants: claims, and the heartbeats that extend them."""
        for event in events:
            if isinstance(event, TaskClaimed):
                self._claims[(event.originator_id, event.task, event.attempt)] = event.lease_until
            elif isinstance(event, ServerHeartbeat):
                self._beats[self._name(event.originator_id)] = event.lease_until
            elif isinstance(event, ServerStarted):
                self._names[event.originator_id] = event.name
                self._beats[event.name] = event.timestamp + timedelta(seconds=event.lease_timeout_s)
            elif isinstance(event, ServerStopped):
                self._beats.pop(self._name(event.originator_id), None)

    def _name(self, server: UUID) -> str:
        return self._names.get(server, "")

    def started(self, server: str, attempt: Attempt) -> None:
        holders = self.live.setdefault(attempt.key, {})
        for other, holder in holders.items():
            if not self._lapsed(holder, attempt.run_id, attempt.task, other):
                raise CheckFailed(CHECKER, f"run {attempt.run_id} ({attempt.job}), task {attempt.task}: attempt "
                                  f"{attempt.attempt} started on {server} while attempt {other} was still running "
                                  f"on {holder}, whose lease had not run out", self.loop.now)
            self.overlaps += 1
            self._watch(holder, attempt.key, other)
        holders[attempt.attempt] = server

    def ended(self, server: str, attempt: Attempt) -> None:
        holders = self.live.get(attempt.key)
        if holders is not None and holders.get(attempt.attempt) == server:
            del holders[attempt.attempt]
            if not holders:
                del self.live[attempt.key]
        self._claims.pop((attempt.run_id, attempt.task, attempt.attempt), None)

    def _lapsed(self, holder: str, run_id: UUID, task: str, attempt: int) -> bool:
        """Whether the holder's lease on the attempt had run out in true time (give or take the clocks' skew)."""
        until = self._claims.get((run_id, task, attempt))
        beat = self._beats.get(holder)
        if until is None or (beat is not None and beat > until):
            until = beat
        expires_us = self.loop.to_us(until) - self.skews_us.get(holder, 0) if until is not None else 0
        return expires_us - self.skew_us < self.loop.now_us

    def _watch(self, holder: str, key: Key, attempt: int) -> None:
        """The stale attempt must end within notice_s of its holder running again."""

        def check() -> None:
            if self.live.get(key, {}).get(attempt) != holder:
                return
            resumes_us = self.paused_until_us(holder)
            if resumes_us > self.loop.now_us:
                self.loop.at(resumes_us + self.notice_us, check)
                return
            raise CheckFailed(CHECKER, f"run {key[0]}, task {key[1]}: attempt {attempt} on {holder} kept running "
                              f"after its lease was lost and another attempt started; {holder} did not notice "
                              f"within {self.notice_us / 1e6:g}s of running again", self.loop.now)

        self.loop.at(max(self.loop.now_us, self.paused_until_us(holder)) + self.notice_us, check)
