"""Time zones: wall times as instants, zone names, ISO 8601 times.

Wall times are mapped to UTC here, not by a library, so the DST rules of the job-file contract hold exactly: a
local time the clocks skip fires once, at the end of the gap; a local time the clocks repeat fires once, at its
first occurrence.
"""

import math
from contextlib import suppress
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from actorbatch.domain.limits import check_time, show
from actorbatch.errors import InvalidJob


def wall_to_utc(local: datetime, zone: ZoneInfo) -> datetime:
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


def iso_utc(instant: datetime) -> str:
    """The instant in UTC as ISO 8601 with 'Z', as the canonical [schedule] table writes it."""
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def load_zone(name: object) -> ZoneInfo:
    """The IANA time zone `name`, or InvalidJob."""
    if isinstance(name, str):
        with suppress(ZoneInfoNotFoundError, ValueError, OSError):
            return ZoneInfo(name)
    raise InvalidJob(f"schedule.timezone: unknown IANA time zone {show(name)} (e.g. 'Europe/Berlin')")


def parse_instant(value: object, zone: ZoneInfo, field: str) -> datetime:
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
        value = wall_to_utc(value, zone)
    return check_time(value, field)

