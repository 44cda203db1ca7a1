"""Human durations in job files: "30s", "15m", "2h", "1d", "1h30m" or a plain number of seconds."""

import math
import re

from actorbatch.errors import InvalidJob

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration_s(value: object, field: str) -> float:
    """Seconds in `value`; raises InvalidJob naming `field` when it is not a positive duration."""
    if isinstance(value, bool):
        raise InvalidJob(f"{field}: expected a duration like '30s', got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and value and _PART.sub("", value.replace(" ", "")) == "":
        seconds = sum(float(n) * _UNIT_S[u] for n, u in _PART.findall(value.replace(" ", "")))
    else:
        raise InvalidJob(f"{field}: expected a duration like '30s', '15m' or '2h', got {value!r}")
    if not math.isfinite(seconds) or seconds <= 0:
        raise InvalidJob(f"{field}: duration must be positive, got {value!r}")
    return seconds
