"""The retention policy: how long finished runs stay in the live log, per run status, before they are archived.

`ACTORBATCH_RETENTION="succeeded=30d,failed=180d,cancelled=30d"` (those are the defaults; any subset may be given,
durations as in job files). Pure: the caller passes `now`.
"""

from collections.abc import Mapping
from datetime import datetime, timedelta

from actorbatch.domain.durations import parse_duration_s
from actorbatch.domain.limits import show
from actorbatch.errors import InvalidJob

DEFAULTS: Mapping[str, float] = {"succeeded": 30 * 86_400.0, "failed": 180 * 86_400.0, "cancelled": 30 * 86_400.0}
MAX_KEEP_S = 100 * 366 * 86_400.0
FIELD = "ACTORBATCH_RETENTION"


def parse_retention(spec: str | None, field: str = FIELD) -> dict[str, float]:
    """Seconds to keep finished runs of each status: the defaults, overridden by `spec` ("failed=90d,...")."""
    policy = dict(DEFAULTS)
    if spec is None or not spec.strip():
        return policy
    for part in spec.split(","):
        status, sep, age = part.strip().partition("=")
        if not sep or status.strip() not in DEFAULTS:
            raise InvalidJob(f"{field}: expected e.g. 'succeeded=30d,failed=180d,cancelled=30d' "
                             f"(statuses {', '.join(DEFAULTS)}), got {show(part.strip())}")
        policy[status.strip()] = parse_duration_s(age.strip(), f"{field} {status.strip()}", maximum_s=MAX_KEEP_S)
    return policy


def cutoffs(policy: Mapping[str, float], now: datetime) -> dict[str, datetime]:
    """Per finished status, the end time before which a run of that status is archived."""
    return {status: now - timedelta(seconds=seconds) for status, seconds in policy.items()}
