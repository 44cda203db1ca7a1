"""The JSON documents of a run, as `run list --json` and `run show --json` print them and webhooks receive them."""

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from actorbatch.domain.alerts import message_text
from actorbatch.domain.notifications import Notification, summaries
from actorbatch.domain.runs import Run
from actorbatch.domain.tasks import TaskRun
from actorbatch.projections.rows import iso


def run_summary(run: Run, now: datetime) -> dict[str, Any]:
    duration = (run.ended_at - run.started_at).total_seconds() if run.ended_at and run.started_at else None
    return {"id": str(run.id), "job": run.job, "status": run.status(now), "due_at": iso(run.due_at),
            "started_at": iso(run.started_at), "ended_at": iso(run.ended_at), "duration_s": duration}


def run_detail(run: Run, now: datetime, notifications: Iterable[Notification]) -> dict[str, Any]:
    """`run show --json`: the summary, who ran it with which params, its tasks and its notifications."""
    return {**run_summary(run, now), "user": run.user, "params": dict(run.params),
            "tasks": [task_detail(t) for t in run.tasks.values()], "notifications": summaries(list(notifications))}


def task_detail(task: TaskRun) -> dict[str, Any]:
    return {"name": task.spec.name, "status": task.status, "attempts": task.attempt, "server": task.server,
            "started_at": iso(task.started_at), "ended_at": iso(task.ended_at), "exit_status": task.exit_status,
            "result": task.result, "history": [{**h, "started_at": iso(h["started_at"]), "ended_at": iso(h["ended_at"])}
                        for h in task.history]}


def message(notification: Notification) -> dict[str, Any]:
    """One system message of `messages --json`."""
    n = notification
    return {"at": iso(n.queued_at), "run_id": str(n.run_id), "job": n.job, "status": n.run_status, "read": n.read,
            "text": message_text(n.job, str(n.run_id), n.run_status, n.failed, n.more_failed)}
