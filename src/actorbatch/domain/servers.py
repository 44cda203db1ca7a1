"""Batch servers as the log knows them: configuration, heartbeats (which extend their leases), capacity windows."""

import re
from collections.abc import Iterable, Sequence
from datetime import datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from actorbatch.domain.events import Event, server_id
from actorbatch.domain.limits import show
from actorbatch.errors import InvalidJob
from actorbatch.frozen import frozen

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WINDOW = re.compile(r"^(?P<days>[a-z,\-]+)\s+(?P<start>\d\d:\d\d)-(?P<end>\d\d:\d\d)=(?P<threads>\d{1,6})$")


@frozen
class Window:
    """A weekly time window with its own thread capacity, e.g. `mon-fri 08:00-18:00=2`."""

    days: frozenset[int]
    start: time
    end: time
    threads: int

    def covers(self, local: datetime) -> bool:
        t = local.time()
        if self.start <= self.end:
            return local.weekday() in self.days and self.start <= t < self.end
        # Crosses midnight: the part after midnight belongs to the previous day's window.
        yesterday = (local.weekday() - 1) % 7
        return (local.weekday() in self.days and t >= self.start) or (yesterday in self.days and t < self.end)


def parse_window(spec: str) -> Window:
    match = _WINDOW.match(spec.strip().lower())
    if not match:
        raise InvalidJob(f"--window: expected e.g. 'mon-fri 08:00-18:00=2', got {spec!r}")
    days: set[int] = set()
    for part in match["days"].split(","):
        first, _, last = part.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise InvalidJob(f"--window: unknown day in {spec!r}; use mon, tue, wed, thu, fri, sat, sun")
        a, b = DAYS.index(first), DAYS.index(last or first)
        days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    try:
        start, end = time.fromisoformat(match["start"]), time.fromisoformat(match["end"])
    except ValueError:
        raise InvalidJob(f"--window: invalid time in {spec!r}") from None
    return Window(frozenset(days), start, end, int(match["threads"]))


def window_fields(window: Window) -> tuple[tuple[int, ...], str, str, int]:
    """A window as events and read models keep it: (weekdays, start, end, threads)."""
    return tuple(sorted(window.days)), window.start.isoformat("minutes"), window.end.isoformat("minutes"), \
        window.threads


def window_spec(fields: Sequence[Any]) -> str:
    """A window as `--window` takes it: `mon,tue 08:00-18:00=2`."""
    days, start, end, threads = fields
    return f"{','.join(DAYS[d] for d in days)} {start}-{end}={threads}"


def window_of(fields: Sequence[Any]) -> Window:
    days, start, end, threads = fields
    return Window(frozenset(days), time.fromisoformat(start), time.fromisoformat(end), int(threads))


def window_text(fields: Sequence[Any]) -> str:
    days, start, end, threads = fields
    return f"{','.join(DAYS[d] for d in days)} {start}-{end}={threads}"


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder ("America"), a name too long
        raise InvalidJob(f"unknown time zone {show(name)}") from None


def capacity(threads: int, windows: Sequence[Window], tz: ZoneInfo, now: datetime) -> int:
    """Threads available at `now`: the first window that covers the local time, else `threads`."""
    local = now.astimezone(tz)
    return next((w.threads for w in windows if w.covers(local)), threads)


def capacity_changes(windows: Sequence[Window], now: datetime) -> datetime | None:
    """When `capacity` may give another answer next: windows start and end on whole minutes (and zones are whole
    minutes apart), so at the next whole minute; None without windows."""
    if not windows:
        return None
    return now.replace(second=0, microsecond=0) + timedelta(minutes=1)


@frozen
class ServerEvent(Event):
    """An event of the Server aggregate."""


@frozen
class ServerStarted(ServerEvent):
    """`windows`: its capacity windows as `window_fields` (version 2: older events had none recorded)."""

    ACTION = "server.started"
    class_version = 2
    name: str
    groups: tuple[str, ...]
    threads: int
    lease_timeout_s: float
    host: str
    pid: int
    windows: tuple[tuple[tuple[int, ...], str, str, int], ...] = ()
    timezone: str = "UTC"

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["windows"], state["timezone"] = (), "UTC"


@frozen
class ServerHeartbeat(ServerEvent):
    """The server is alive: every lease it holds lasts until at least `lease_until`."""

    ACTION = "server.heartbeat"
    running: int
    lease_until: datetime


@frozen
class ServerStopped(ServerEvent):
    ACTION = "server.stopped"
    reason: str


@frozen
class DrainRequested(Event):
    """Someone asked server `server` to drain and stop. Its own aggregate (a fresh id), not an event of the
    Server: it must not race the server's heartbeats for the next version of its record."""

    ACTION = "server.drain_requested"
    server: str
    user: str


FORGOTTEN_AFTER = timedelta(days=1)  # a server silent this long leaves `server list` (its events stay in the log)


def current(servers: Iterable["Server"], now: datetime) -> list["Server"]:
    """The servers worth listing: alive, or seen within FORGOTTEN_AFTER. Every restart under a default name
    (host-pid) is a new server, so without this the list would grow with every restart for ever."""
    return [s for s in servers if s.alive(now) or (s.last_seen is not None and now - s.last_seen < FORGOTTEN_AFTER)]


class Server:
    """The Server aggregate: id is server_id(name), so two live processes cannot share a name unnoticed."""

    def __init__(self) -> None:
        self.id: UUID | None = None
        self.version = 0
        self.name = ""
        self.groups: tuple[str, ...] = ()
        self.threads = 0
        self.lease_timeout_s = 30.0
        self.running = 0
        self.last_seen: datetime | None = None
        self.started_at: datetime | None = None
        self.lease_until: datetime | None = None
        self.stopped = True
        self.windows: tuple[tuple[tuple[int, ...], str, str, int], ...] = ()
        self.timezone = "UTC"

    def alive(self, now: datetime) -> bool:
        return not self.stopped and self.lease_until is not None and self.lease_until >= now

    def start(self, name: str, groups: Sequence[str], threads: int, lease_timeout_s: float, host: str, pid: int,
              now: datetime, windows: Sequence[Window] = (), timezone: str = "UTC") -> ServerStarted:
        return ServerStarted(originator_id=self.id or server_id(name), originator_version=self.version + 1,
                             timestamp=now, name=name, groups=tuple(groups), threads=threads,
                             lease_timeout_s=lease_timeout_s, host=host, pid=pid,
                             windows=tuple(window_fields(w) for w in windows), timezone=timezone)

    def capacity(self, now: datetime) -> int:
        """Its threads at `now`, by the windows it started with."""
        return capacity(self.threads, [window_of(w) for w in self.windows], zone(self.timezone), now)

    def window_at(self, now: datetime) -> str | None:
        """The window that covers `now`, as its spec, if one does."""
        local = now.astimezone(zone(self.timezone))
        return next((window_text(w) for w in self.windows if window_of(w).covers(local)), None)

    def heartbeat(self, running: int, now: datetime) -> ServerHeartbeat:
        assert self.id is not None
        return ServerHeartbeat(originator_id=self.id, originator_version=self.version + 1, timestamp=now,
                               running=running, lease_until=now + timedelta(seconds=self.lease_timeout_s))

    def stop(self, reason: str, now: datetime) -> ServerStopped:
        assert self.id is not None
        return ServerStopped(originator_id=self.id, originator_version=self.version + 1, timestamp=now,
                             reason=reason)

    def apply(self, event: ServerEvent) -> None:
        self.id, self.version = event.originator_id, event.originator_version
        self.last_seen = event.timestamp
        if isinstance(event, ServerStarted):
            self.name, self.groups, self.threads = event.name, event.groups, event.threads
            self.lease_timeout_s, self.stopped, self.running = event.lease_timeout_s, False, 0
            self.windows, self.timezone = event.windows, event.timezone
            self.started_at = event.timestamp
            self.lease_until = event.timestamp + timedelta(seconds=event.lease_timeout_s)
        elif isinstance(event, ServerHeartbeat):
            self.running, self.lease_until = event.running, event.lease_until
        elif isinstance(event, ServerStopped):
            self.stopped, self.running = True, 0

