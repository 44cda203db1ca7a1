"""Human durations in job files: "30s", "15m", "2h", "1d", "1h30m" or a plain number of seconds."""

import math
import re

from actorbatch.domain.limits import DAY_S, MAX_DURATION_S, show
from actorbatch.errors import InvalidJob

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration_s(value: object, field: str, *, zero: bool = False, maximum_s: float = MAX_DURATION_S) -> float:
    """Seconds in `value`; raises InvalidJob naming `field` unless it is positive (or zero, where `zero` says
    that means something) and at most `maximum_s`."""
    if isinstance(value, bool):
        raise InvalidJob(f"{field}: expected a duration like '30s', got {value!r}")
    if isinstance(value, int | float):
        seconds = float(max(-1e300, min(value, 1e300)) if isinstance(value, int) else value)  # float(10**400) fails
    elif isinstance(value, str) and value and _PART.sub("", value.replace(" ", "")) == "":
        seconds = sum(float(n) * _UNIT_S[u] for n, u in _PART.findall(value.replace(" ", "")))
    else:
        raise InvalidJob(f"{field}: expected a duration like '30s', '15m' or '2h', got {show(value)}")
    if math.isnan(seconds):
        raise InvalidJob(f"{field}: expected a duration like '30s', got nan")
    if seconds < 0 or (seconds == 0 and not zero):
        raise InvalidJob(f"{field}: duration must be {'zero or ' if zero else ''}positive, got {show(value)}")
    if seconds > maximum_s:
        raise InvalidJob(f"{field}: at most {maximum_s / DAY_S:g}d, got {show(value)}")
    return seconds


def show_duration(seconds: float | None) -> str:
    """How screens show a duration: "3.50s", "2m30s", "2h00m"; None as "-"."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m{secs:02d}s"
