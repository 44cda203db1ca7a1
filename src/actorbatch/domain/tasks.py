"""The state of one task within one run: its status, its attempts, and how its conditions on its parents are decided.

The Run aggregate (`runs`) changes these states as it folds its events; nothing here reads a clock or touches storage.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from actorbatch.domain.jobs import TaskSpec
from actorbatch.domain.statuses import TaskStatus

TERMINAL = frozenset({TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.SKIPPED, TaskStatus.CANCELLED})
_FIELDS = ("status", "attempt", "failures", "lost", "server", "lease_until", "not_before", "started_at", "ended_at",
           "exit_status", "history", "result")


@dataclass
class TaskRun:
    """The state of one task within one run."""

    spec: TaskSpec
    status: TaskStatus = TaskStatus.WAITING
    attempt: int = 0  # attempts started, lost ones included
    failures: int = 0  # the task's own failures, which `retries` bounds
    lost: int = 0  # attempts lost with their server, which `lost_retries` bounds
    server: str | None = None
    lease_until: datetime | None = None
    not_before: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    exit_status: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)  # one entry per attempt, lost and ignored ones too
    result: Any = None  # what the body returned, once it succeeded

    def to_dict(self) -> dict[str, Any]:
        """The state as plain data, but for the spec (the run's definition holds it). The status is stored as its
        plain string: read models written before statuses were enums read back the same."""
        data = {name: getattr(self, name) for name in _FIELDS}
        data["status"] = self.status.value
        return data

    @classmethod
    def from_dict(cls, spec: TaskSpec, data: Mapping[str, Any]) -> "TaskRun":
        return cls(spec, **{**data, "status": TaskStatus(data["status"])})


def verdict(spec: TaskSpec, met: int, unmet: int) -> bool | None:
    """True when the task may run, False when it never can, None while undecided: from how many of its parents
    have ended meeting (`met`) or failing (`unmet`) their condition."""
    if spec.when == "all":
        if unmet:
            return False
        return True if met == len(spec.after) else None
    if met:
        return True
    return False if unmet == len(spec.after) else None


def fails_run(state: TaskRun) -> bool:
    return state.status == TaskStatus.FAILED and not state.spec.ignore_failure


def condition_met(parent_status: str, condition: str) -> bool | None:
    """Whether a parent in `parent_status` meets `condition`; None while the parent has not ended."""
    if parent_status not in TERMINAL:
        return None
    if condition == "ended":
        return parent_status in (TaskStatus.SUCCEEDED, TaskStatus.FAILED)
    return parent_status == condition
