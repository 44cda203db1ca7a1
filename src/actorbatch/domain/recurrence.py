"""Recurrence rules: when a scheduled job fires.

Wall-clock rules are evaluated in naive local time and mapped to UTC here, not by a library, so
the DST rules of the job-file contract hold exactly: a local time the clocks skip fires once, at
the end of the gap; a local time the clocks repeat fires once, at its first occurrence.
"""

from __future__ import annotations

import hashlib
import math
import re
from bisect import bisect_right
from calendar import monthrange
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from actorbatch.domain.durations import parse_duration_s
from actorbatch.domain.limits import LATEST, MAX_EVERY_S, MIN_EVERY_S, check_time, show
from actorbatch.errors import InvalidJob

RUN_ALL_LIMIT = 1000
MISFIRE_POLICIES = ("run-once", "run-all", "skip")
OVERLAP_POLICIES = ("skip", "queue", "allow")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_TICK = timedelta(microseconds=1)  # datetime resolution: "at or after t" = "after t - _TICK"
_ONE_DAY = timedelta(days=1)
_LAST = 32  # day-of-month marker: the last day of each month
_ALL_HOURS = tuple(range(24))
_ALL_MONTHS = frozenset(range(1, 13))
_CRON_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day", 1, 31),
    ("month", 1, 12),
    ("weekday", 0, 7),
)
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_CRON_NAMES = {
    "month": {name: n for n, name in enumerate(_MONTHS, 1)},
    "weekday": {name: n for n, name in enumerate(("sun", *WEEKDAYS[:-1]))},
}
_CRON_ITEM = re.compile(r"(?:(\*)|([0-9a-z]{1,3})(?:-([0-9a-z]{1,3}))?)(?:/([0-9]{1,2}))?")  # no field needs more


@dataclass(frozen=True)
class _Calendar:
    """Local minutes that fire, as cron-style sets; None means any day (weekday 0 = Monday)."""

    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int] | None = None
    weekdays: frozenset[int] | None = None
    months: frozenset[int] = _ALL_MONTHS

    def next_after(self, local: datetime) -> datetime:
        """The first firing minute strictly after the naive wall time `local`."""
        day = local.date()
        if self._fires_on(day):
            clock = self._next_clock(local.hour, local.minute)
            if clock is not None:
                return datetime.combine(day, clock)
        day += _ONE_DAY
        while not self._fires_on(day):  # ends: parsing rejects calendars with no firing day
            day = day + _ONE_DAY if day.month in self.months else _first_of_next_month(day)
        return datetime.combine(day, time(self.hours[0], self.minutes[0]))

    def _next_clock(self, hour: int, minute: int) -> time | None:
        if hour in self.hours:
            i = bisect_right(self.minutes, minute)
            if i < len(self.minutes):
                return time(hour, self.minutes[i])
        i = bisect_right(self.hours, hour)
        return time(self.hours[i], self.minutes[0]) if i < len(self.hours) else None

    def _fires_on(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        if self.days is None and self.weekdays is None:
            return True
        # As in cron: when both the day of month and the weekday are restricted, either will do.
        by_day = self.days is not None and (day.day in self.days or (_LAST in self.days and (day + _ONE_DAY).day == 1))
        return by_day or (self.weekdays is not None and day.weekday() in self.weekdays)


def _first_of_next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _hhmm(hour: int, minute: int) -> str:
    return f"{hour:02d}:{minute:02d}"


@dataclass(frozen=True)
class At:
    """Once, at one instant: "run later" (a local time in the job file is resolved on parsing)."""

    at: datetime

    def to_table(self) -> dict[str, object]:
        return {"at": _iso(self.at)}


@dataclass(frozen=True)
class Every:
    """Absolute time, blind to DST: fires at anchor + k * interval_s for every k >= 0."""

    interval_s: float

    def to_table(self) -> dict[str, object]:
        return {"every": self.interval_s}


@dataclass(frozen=True)
class Hourly:
    """At `minute` past every local hour."""

    minute: int

    @cached_property
    def calendar(self) -> _Calendar:
        return _Calendar((self.minute,), _ALL_HOURS)

    def to_table(self) -> dict[str, object]:
        return {"hourly": f":{self.minute:02d}"}


@dataclass(frozen=True)
class Daily:
    """At one local time every day."""

    hour: int
    minute: int

    @cached_property
    def calendar(self) -> _Calendar:
        return _Calendar((self.minute,), (self.hour,))

    def to_table(self) -> dict[str, object]:
        return {"daily": _hhmm(self.hour, self.minute)}


@dataclass(frozen=True)
class Weekly:
    """At one local time on some weekdays (names from WEEKDAYS, in week order)."""

    days: tuple[str, ...]
    hour: int
    minute: int

    @cached_property
    def calendar(self) -> _Calendar:
        weekdays = frozenset(WEEKDAYS.index(day) for day in self.days)
        return _Calendar((self.minute,), (self.hour,), weekdays=weekdays)

    def to_table(self) -> dict[str, object]:
        return {"weekly": {"days": list(self.days), "at": _hhmm(self.hour, self.minute)}}


@dataclass(frozen=True)
class Monthly:
    """At one local time on one day of the months that have it, or on every month's last day."""

    day: int | Literal["last"]
    hour: int
    minute: int

    @cached_property
    def calendar(self) -> _Calendar:
        day = _LAST if self.day == "last" else self.day
        return _Calendar((self.minute,), (self.hour,), days=frozenset({day}))

    def to_table(self) -> dict[str, object]:
        return {"monthly": {"day": self.day, "at": _hhmm(self.hour, self.minute)}}


@dataclass(frozen=True)
class Cron:
    """A five-field cron expression, evaluated in local wall time."""

    expression: str

    def __post_init__(self) -> None:
        _ = self.calendar  # parse now, so a bad expression fails where the rule is built

    @cached_property
    def calendar(self) -> _Calendar:
        return _cron_calendar(self.expression)

    def to_table(self) -> dict[str, object]:
        return {"cron": self.expression}


Rule = At | Every | Hourly | Daily | Weekly | Monthly | Cron


def _cron_calendar(expression: str) -> _Calendar:
    """Standard five-field cron. A day field is restricted unless it is a bare "*" (POSIX)."""
    fields = expression.lower().split()
    if len(fields) != len(_CRON_FIELDS):
        raise InvalidJob(f"schedule.cron: expected 5 fields (minute hour day month weekday), got {show(expression)}")
    minutes, hours, days, months, weekdays = map(_cron_field, fields, _CRON_FIELDS)
    if fields[4] == "*" and min(days) > max(monthrange(2000, month)[1] for month in months):
        raise InvalidJob(f"schedule.cron: day {min(days)} never comes in the months of {show(expression)}")
    return _Calendar(
        minutes=tuple(sorted(minutes)),
        hours=tuple(sorted(hours)),
        days=None if fields[2] == "*" else days,
        weekdays=None if fields[4] == "*" else frozenset((d + 6) % 7 for d in weekdays),
        months=months,
    )


def _cron_field(text: str, spec: tuple[str, int, int]) -> frozenset[int]:
    """One field: '*', numbers or names, 'low-high' ranges, '/step' and ',' lists."""
    name, low, high = spec
    values: set[int] = set()
    for item in text.split(","):
        match = _CRON_ITEM.fullmatch(item)
        star, first, last, step = match.groups() if match else ("", "", "", "")
        start = low if star else _cron_number(first, name)
        stop = high if star or (step and not last) else _cron_number(last or first, name)
        stride = int(step or 1)
        if not (low <= start <= stop <= high and stride > 0):
            raise InvalidJob(
                f"schedule.cron: bad {name} field {show(text)}: use {low}-{high}, names, '*', ',', 'low-high' "
                "and '/step'"
            )
        values.update(range(start, stop + 1, stride))
    return frozenset(values)


def _cron_number(token: str, name: str) -> int:
    names = _CRON_NAMES.get(name, {})
    return names[token] if token in names else int(token) if token.isdigit() else -1


@dataclass(frozen=True)
class Schedule:
    """When a job fires (rule, zone, bounds) and what to do about missed or overlapping runs."""

    rule: Rule
    timezone: str = "UTC"
    start: datetime | None = None
    end: datetime | None = None
    misfire: str = "run-once"
    overlap: str = "skip"
    jitter_s: float = 0.0

    @cached_property
    def _zone(self) -> ZoneInfo:
        return _load_zone(self.timezone)

    def next_fire(self, after: datetime, scheduled_at: datetime) -> datetime | None:
        """First fire time strictly after `after` (aware; UTC out), or None once the schedule ends.

        `scheduled_at` is when the job was scheduled: `every` counts from `start`, or from
        `scheduled_at` when start is None.
        """
        if after.tzinfo is None:
            raise ValueError("next_fire needs an aware datetime")
        if after >= LATEST:  # every schedule ends by LATEST: fire times stay far from datetime's last year
            return None
        if self.start is not None and after < self.start:
            after = self.start - _TICK  # a fire at `start` itself counts
        fire = self._next_unbounded(after, scheduled_at)
        end = LATEST if self.end is None else min(self.end, LATEST)
        return fire if fire is not None and fire < end else None

    def fires(self, after: datetime, until: datetime, scheduled_at: datetime, limit: int) -> list[datetime]:
        """Fire times in (after, until], oldest first, at most `limit`."""
        found: list[datetime] = []
        while len(found) < limit:
            fire = self.next_fire(found[-1] if found else after, scheduled_at)
            if fire is None or fire > until:
                break
            found.append(fire)
        return found

    def due_at(self, fire: datetime, key: str = "") -> datetime:
        """When the run for `fire` is due: `fire` plus a jitter in [0, jitter_s).

        The jitter is a hash of `key` (e.g. the job id, so jobs sharing a fire time spread out)
        and the fire time: every server and every replay agree on it. The fire time itself stays
        the run's identity.
        """
        if not self.jitter_s:
            return fire
        digest = hashlib.sha256(f"{key}@{_iso(fire)}".encode()).digest()
        return fire + timedelta(seconds=self.jitter_s * int.from_bytes(digest[:8]) / 2**64)

    def to_dict(self) -> dict[str, object]:
        """The canonical [schedule] table: times in UTC with 'Z', durations in seconds."""
        table = self.rule.to_table()
        table.update(timezone=self.timezone, misfire=self.misfire, overlap=self.overlap)
        if self.start is not None:
            table["start"] = _iso(self.start)
        if self.end is not None:
            table["end"] = _iso(self.end)
        if self.jitter_s:
            table["jitter"] = self.jitter_s
        return table

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> Schedule:
        """Inverse of to_dict, whose table parse_schedule reads back exactly."""
        return parse_schedule(d)

    def _next_unbounded(self, after: datetime, scheduled_at: datetime) -> datetime | None:
        rule = self.rule
        if isinstance(rule, At):
            return rule.at if rule.at > after else None
        if isinstance(rule, Every):
            return _next_every(self.start or scheduled_at, rule.interval_s, after)
        local = after.astimezone(self._zone).replace(tzinfo=None)
        while True:  # a repeated hour or a gap can map candidates to `after` or before: pass them
            local = rule.calendar.next_after(local)
            fire = _to_utc(local, self._zone)
            if fire > after:
                return fire


def _next_every(anchor: datetime, interval_s: float, after: datetime) -> datetime:
    """anchor + k * interval for the smallest k >= 0 strictly after `after`, exact to the µs."""
    step_us = round(interval_s * 1_000_000)
    k = max(0, (after - anchor) // _TICK // step_us + 1)
    return anchor + k * timedelta(microseconds=step_us)


def _to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    """The instant of a wall time: its first occurrence if repeated, the gap's end if skipped."""
    first = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == local:
        return first
    # Skipped: read with the offset after the jump (fold=1) it lands before the jump, with the
    # offset before it (fold=0) after the jump. Bisect for the jump (it falls on a whole second).
    lo = math.floor(local.replace(tzinfo=zone, fold=1).timestamp())
    hi = math.ceil(first.timestamp())
    offset_before = datetime.fromtimestamp(lo, zone).utcoffset()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, zone).utcoffset() == offset_before:
            lo = mid
        else:
            hi = mid
    return datetime.fromtimestamp(hi, UTC)


def _latest_fire(schedule: Schedule, since: datetime, now: datetime, scheduled_at: datetime) -> datetime | None:
    """The last fire time in (since, now], by bisection: ~50 next_fire calls however many fires."""
    latest = schedule.next_fire(since, scheduled_at)
    if latest is None or latest > now:
        return None
    hi = now  # invariant: `latest` is a fire time and none lies in (hi, now]
    while latest < hi:
        mid = latest + (hi - latest) / 2
        fire = schedule.next_fire(mid, scheduled_at)
        if fire is not None and fire <= hi:
            latest = fire
        else:
            hi = mid
    return latest


def misfired(schedule: Schedule, last_fire: datetime | None, scheduled_at: datetime, now: datetime) -> list[datetime]:
    """Missed fire times to run now: due at or before `now`, after `last_fire` and `scheduled_at`.

    run-all: all of them, oldest first, but at most the oldest RUN_ALL_LIMIT (1000), so a long
    outage of a frequent schedule stays bounded; call again with the last one returned as
    `last_fire` for the next ones. run-once: only the latest. skip: none.
    """
    since = scheduled_at if last_fire is None else max(last_fire, scheduled_at)
    if schedule.misfire == "run-all":
        return schedule.fires(since, now, scheduled_at, RUN_ALL_LIMIT)
    if schedule.misfire == "run-once":
        latest = _latest_fire(schedule, since, now, scheduled_at)
        return [] if latest is None else [latest]
    return []


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _load_zone(name: object) -> ZoneInfo:
    if isinstance(name, str):
        with suppress(ZoneInfoNotFoundError, ValueError, OSError):
            return ZoneInfo(name)
    raise InvalidJob(f"schedule.timezone: unknown IANA time zone {show(name)} (e.g. 'Europe/Berlin')")


def _instant(value: object, zone: ZoneInfo, field: str) -> datetime:
    """An ISO 8601 time as aware UTC; without an offset it is wall time in `zone`."""
    if isinstance(value, str):
        with suppress(ValueError):
            value = datetime.fromisoformat(value)
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value, time())
    if not isinstance(value, datetime):
        raise InvalidJob(f"{field}: expected an ISO 8601 time like 2026-12-01T02:00, got {show(value)}")
    if value.tzinfo is None:
        check_time(value.replace(tzinfo=UTC), field)  # first roughly: near year 1 or 9999 the conversion overflows
        value = _to_utc(value, zone)
    return check_time(value, field)


def _clock(value: object, field: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", value) if isinstance(value, str) else None
    if match is None or int(match[1]) > 23 or int(match[2]) > 59:
        raise InvalidJob(f"{field}: expected a local time like '02:00', got {show(value)}")
    return int(match[1]), int(match[2])


def _inline_table(value: object, field: str, keys: tuple[str, ...]) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise InvalidJob(f"{field}: expected a table with keys {', '.join(keys)}, got {show(value)}")
    unknown = sorted(set(value) - set(keys))
    if unknown:
        raise InvalidJob(f"{field}: unknown key {unknown[0]!r} (expected {', '.join(keys)})")
    return value


def _parse_at(value: object, zone: ZoneInfo) -> At:
    return At(_instant(value, zone, "schedule.at"))


def _parse_every(value: object, zone: ZoneInfo) -> Every:
    seconds = parse_duration_s(value, "schedule.every", maximum_s=MAX_EVERY_S)
    if seconds < MIN_EVERY_S:
        raise InvalidJob(f"schedule.every: must be at least {MIN_EVERY_S:g}s, got {show(value)}")
    return Every(seconds)


def _parse_hourly(value: object, zone: ZoneInfo) -> Hourly:
    match = re.fullmatch(r":(\d{2})", value) if isinstance(value, str) else None
    if match is None or int(match[1]) > 59:
        raise InvalidJob(f"schedule.hourly: expected minutes past the hour as ':05', got {show(value)}")
    return Hourly(int(match[1]))


def _parse_daily(value: object, zone: ZoneInfo) -> Daily:
    return Daily(*_clock(value, "schedule.daily"))


def _parse_weekly(value: object, zone: ZoneInfo) -> Weekly:
    table = _inline_table(value, "schedule.weekly", ("days", "at"))
    days = table.get("days")
    if not (isinstance(days, list) and days and all(isinstance(day, str) and day.lower() in WEEKDAYS for day in days)):
        expected = ", ".join(WEEKDAYS)
        raise InvalidJob(f"schedule.weekly.days: expected a list of {expected}, got {show(days)}")
    names = {day.lower() for day in days}
    hour, minute = _clock(table.get("at"), "schedule.weekly.at")
    return Weekly(tuple(day for day in WEEKDAYS if day in names), hour, minute)


def _parse_monthly(value: object, zone: ZoneInfo) -> Monthly:
    table = _inline_table(value, "schedule.monthly", ("day", "at"))
    return Monthly(_month_day(table.get("day")), *_clock(table.get("at"), "schedule.monthly.at"))


def _month_day(value: object) -> int | Literal["last"]:
    if value == "last":
        return "last"
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 31:
        return value
    raise InvalidJob(f"schedule.monthly.day: expected 1..31 or 'last', got {show(value)}")


def _parse_cron(value: object, zone: ZoneInfo) -> Cron:
    if not isinstance(value, str):
        raise InvalidJob(f"schedule.cron: expected a string like '0 2 * * mon-fri', got {show(value)}")
    return Cron(" ".join(value.split()))


_RULE_PARSERS: Mapping[str, Callable[[object, ZoneInfo], Rule]] = {
    "at": _parse_at,
    "every": _parse_every,
    "hourly": _parse_hourly,
    "daily": _parse_daily,
    "weekly": _parse_weekly,
    "monthly": _parse_monthly,
    "cron": _parse_cron,
}
_SETTINGS = ("timezone", "start", "end", "misfire", "overlap", "jitter")


def _choice(table: Mapping[str, object], key: str, allowed: tuple[str, ...]) -> str:
    value = table.get(key, allowed[0])
    if not isinstance(value, str) or value not in allowed:
        raise InvalidJob(f"schedule.{key}: expected one of {', '.join(allowed)}, got {show(value)}")
    return value


def parse_schedule(table: Mapping[str, object]) -> Schedule:
    """The job file's [schedule] table -> Schedule; raises InvalidJob (one line) on any mistake."""
    unknown = sorted(set(table) - set(_RULE_PARSERS) - set(_SETTINGS))
    if unknown:
        raise InvalidJob(f"schedule: unknown key {unknown[0]!r}")
    rule_keys = [key for key in _RULE_PARSERS if key in table]
    if len(rule_keys) != 1:
        raise InvalidJob("schedule: exactly one of at, every, hourly, daily, weekly, monthly, cron")
    zone = _load_zone(table.get("timezone", "UTC"))
    rule = _RULE_PARSERS[rule_keys[0]](table[rule_keys[0]], zone)
    start = _instant(table["start"], zone, "schedule.start") if "start" in table else None
    end = _instant(table["end"], zone, "schedule.end") if "end" in table else None
    if start is not None and end is not None and end <= start:
        raise InvalidJob(f"schedule.end: must be after schedule.start, got {show(table['end'])}")
    return Schedule(
        rule,
        zone.key,
        start,
        end,
        misfire=_choice(table, "misfire", MISFIRE_POLICIES),
        overlap=_choice(table, "overlap", OVERLAP_POLICIES),
        jitter_s=parse_duration_s(table["jitter"], "schedule.jitter") if "jitter" in table else 0.0,
    )
