"""Running a finished run again: which of its tasks keep their outcome, and the two events that say so."""

from datetime import datetime
from typing import Any
from uuid import UUID

from actorbatch.domain.runs import RetryCreated, Run, RunRetried
from actorbatch.domain.statuses import TaskStatus
from actorbatch.errors import ActorbatchError


def keepable(run: Run) -> dict[str, Any]:
    """The tasks that succeeded with every ancestor kept too, with their results: a task downstream of one that
    runs again might decide otherwise this time, so it runs again as well."""
    kept: dict[str, Any] = {}
    changed = True
    while changed:  # a fixpoint: the definition's order need not put parents first
        changed = False
        for name, state in run.tasks.items():
            if (name not in kept and state.status == TaskStatus.SUCCEEDED
                    and all(parent in kept for parent, _ in state.spec.after)):
                kept[name] = state.result
                changed = True
    return kept


def retry(run: Run, new_id: UUID, user: str, now: datetime, *, everything: bool) -> tuple[RetryCreated, RunRetried]:
    """A new run of the same job version and params, due now, in which the tasks `keepable` names keep their
    success and result (none with `everything`); and the link on the finished run. ActorbatchError if the run
    has not finished, or nothing in it would run again."""
    if not run.complete:
        raise ActorbatchError(f"run {run.id} is still {run.status(now)}: wait for it, or cancel it, first")
    kept = {} if everything else keepable(run)
    if len(kept) == len(run.tasks):
        raise ActorbatchError(f"every task of run {run.id} succeeded: nothing to retry (--all runs them all again)")
    assert run.definition is not None
    created = RetryCreated(originator_id=new_id, originator_version=1, timestamp=now,
                           definition=run.definition.to_dict(), job_version=run.job_version, params=dict(run.params),
                           user=user, due_at=now, fire_time=None, retry_of=run.id, kept=kept)
    link = RunRetried(originator_id=run.id, originator_version=run.version + 1, timestamp=now, retry_id=new_id,
                      user=user)
    return created, link
