"""Calendars of firing local minutes, and the five-field cron expressions that describe them."""

import re
from bisect import bisect_right
from calendar import monthrange
from datetime import date, datetime, time, timedelta

from actorbatch.domain.limits import show
from actorbatch.errors import InvalidJob
from actorbatch.frozen import frozen

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
LAST_DAY = 32  # day-of-month marker: the last day of each month

_ONE_DAY = timedelta(days=1)
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


@frozen
class Calendar:
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
        last = (day + _ONE_DAY).day == 1
        by_day = self.days is not None and (day.day in self.days or (LAST_DAY in self.days and last))
        return by_day or (self.weekdays is not None and day.weekday() in self.weekdays)


def _first_of_next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def cron_calendar(expression: str) -> Calendar:
    """Standard five-field cron. A day field is restricted unless it is a bare "*" (POSIX)."""
    fields = expression.lower().split()
    if len(fields) != len(_CRON_FIELDS):
        raise InvalidJob(f"schedule.cron: expected 5 fields (minute hour day month weekday), got {show(expression)}")
    minutes, hours, days, months, weekdays = map(_cron_field, fields, _CRON_FIELDS)
    if fields[4] == "*" and min(days) > max(monthrange(2000, month)[1] for month in months):
        raise InvalidJob(f"schedule.cron: day {min(days)} never comes in the months of {show(expression)}")
    return Calendar(
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

