"""Recurrence rules: when a job fires, one kind of rule per key of the job file's [schedule] table."""

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import cached_property
from typing import Literal
from zoneinfo import ZoneInfo

from actorbatch.domain.cron import LAST_DAY, WEEKDAYS, Calendar, cron_calendar
from actorbatch.domain.durations import parse_duration_s
from actorbatch.domain.limits import MAX_EVERY_S, MIN_EVERY_S, show
from actorbatch.domain.timezones import iso_utc, parse_instant
from actorbatch.errors import InvalidJob
from actorbatch.frozen import frozen

_ALL_HOURS = tuple(range(24))


def _hhmm(hour: int, minute: int) -> str:
    return f"{hour:02d}:{minute:02d}"


@frozen
class At:
    """Once, at one instant: "run later" (a local time in the job file is resolved on parsing)."""

    at: datetime

    def to_table(self) -> dict[str, object]:
        return {"at": iso_utc(self.at)}


@frozen
class Every:
    """Absolute time, blind to DST: fires at anchor + k * interval_s for every k >= 0."""

    interval_s: float

    def to_table(self) -> dict[str, object]:
        return {"every": self.interval_s}


@frozen
class Hourly:
    """At `minute` past every local hour."""

    minute: int

    @cached_property
    def calendar(self) -> Calendar:
        return Calendar((self.minute,), _ALL_HOURS)

    def to_table(self) -> dict[str, object]:
        return {"hourly": f":{self.minute:02d}"}


@frozen
class Daily:
    """At one local time every day."""

    hour: int
    minute: int

    @cached_property
    def calendar(self) -> Calendar:
        return Calendar((self.minute,), (self.hour,))

    def to_table(self) -> dict[str, object]:
        return {"daily": _hhmm(self.hour, self.minute)}


@frozen
class Weekly:
    """At one local time on some weekdays (names from WEEKDAYS, in week order)."""

    days: tuple[str, ...]
    hour: int
    minute: int

    @cached_property
    def calendar(self) -> Calendar:
        weekdays = frozenset(WEEKDAYS.index(day) for day in self.days)
        return Calendar((self.minute,), (self.hour,), weekdays=weekdays)

    def to_table(self) -> dict[str, object]:
        return {"weekly": {"days": list(self.days), "at": _hhmm(self.hour, self.minute)}}


@frozen
class Monthly:
    """At one local time on one day of the months that have it, or on every month's last day."""

    day: int | Literal["last"]
    hour: int
    minute: int

    @cached_property
    def calendar(self) -> Calendar:
        day = LAST_DAY if self.day == "last" else self.day
        return Calendar((self.minute,), (self.hour,), days=frozenset({day}))

    def to_table(self) -> dict[str, object]:
        return {"monthly": {"day": self.day, "at": _hhmm(self.hour, self.minute)}}


@frozen
class Cron:
    """A five-field cron expression, evaluated in local wall time."""

    expression: str

    def __post_init__(self) -> None:
        _ = self.calendar  # parse now, so a bad expression fails where the rule is built

    @cached_property
    def calendar(self) -> Calendar:
        return cron_calendar(self.expression)

    def to_table(self) -> dict[str, object]:
        return {"cron": self.expression}


Rule = At | Every | Hourly | Daily | Weekly | Monthly | Cron


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
    return At(parse_instant(value, zone, "schedule.at"))


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


RULE_PARSERS: Mapping[str, Callable[[object, ZoneInfo], Rule]] = {
    "at": _parse_at,
    "every": _parse_every,
    "hourly": _parse_hourly,
    "daily": _parse_daily,
    "weekly": _parse_weekly,
    "monthly": _parse_monthly,
    "cron": _parse_cron,
}
