"""How long a simulated task attempt takes and whether it fails: a pure function of the attempt's identity.

The profile travels in the task's params (`sim_s`, the mean duration; `sim_fail`, the failure probability), so a
job file run by real servers (`simulations.bodies:simulated`) and the same job in the simulator behave alike, and a
task's fate does not depend on which server ran it or when: comparing two settings compares the settings only.
"""

import hashlib
import math
from collections.abc import Mapping
from statistics import NormalDist
from typing import Any
from uuid import UUID

SIGMA = 0.5  # spread of durations around their mean (log-normal)
_NORMAL = NormalDist()


def attempt_outcome(params: Mapping[str, Any], run_id: UUID, task: str, attempt: int) -> tuple[float, str | None]:
    """(duration in seconds, exit status or None for success) of this attempt of this task."""
    digest = hashlib.blake2b(f"{run_id}:{task}:{attempt}".encode(), digest_size=16).digest()
    u_duration = (int.from_bytes(digest[:8]) + 0.5) / 2**64
    u_failure = int.from_bytes(digest[8:]) / 2**64
    mean_s = float(params.get("sim_s", 1.0))
    duration_s = mean_s * math.exp(SIGMA * _NORMAL.inv_cdf(u_duration) - SIGMA**2 / 2)
    if u_failure < float(params.get("sim_fail", 0.0)):
        return duration_s, "simulated failure (exit code 1)"
    return duration_s, None
