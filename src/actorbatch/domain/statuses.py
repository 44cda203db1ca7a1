"""Where a run and a task stand: plain string enums, stored (in read models) and shown as their values.

Kept apart from the aggregates so that what only names a status (the CLI's choices) need not load them.
"""

from enum import StrEnum


class TaskStatus(StrEnum):
    """Where a task stands in its run. Stored (in read models) and shown as the plain string value."""

    WAITING = "waiting"  # for its parents to end
    READY = "ready"  # to be claimed, once the run is due and any retry delay is over
    RUNNING = "running"  # an attempt holds a lease
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"  # its conditions can no longer be met
    CANCELLED = "cancelled"


class RunStatus(StrEnum):
    """Where a run stands, as `Run.status` tells it. Stored (in read models) and shown as the plain string value."""

    SCHEDULED = "scheduled"  # due later
    RUNNING = "running"  # due (or started), not complete
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
