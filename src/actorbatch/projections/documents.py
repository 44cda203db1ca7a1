"""The JSON documents of the read models: a run (as `run list --json` and `run show --json` print it and webhooks
receive it), a message, a job, the servers and the status screen, as the CLI, the API and the web console give them."""

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from actorbatch.domain.alerts import message_text
from actorbatch.domain.notifications import Notification, summaries
from actorbatch.domain.recurrence import Schedule
from actorbatch.domain.runs import Run
from actorbatch.domain.servers import current
from actorbatch.domain.tasks import TaskRun
from actorbatch.projections.rows import iso

if TYPE_CHECKING:
    from actorbatch.projections.views import Views

MAX_RUNNING_RUNS = 1000  # started runs read to list running tasks (each server runs at most its threads)


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


def job_list_json(jobs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """`job list --json` and `GET /api/jobs`: the listing's contract fields of each job."""
    return [{k: job[k] for k in ("name", "group", "scheduled", "next_fire", "tasks")} for job in jobs]


def run_show_json(run: Mapping[str, Any]) -> dict[str, Any]:
    """`run show --json` and `GET /api/runs/{id}`: a run's detail as the contract shapes it."""
    return {k: v for k, v in run.items() if k != "duration_s"}


def servers_document(views: "Views", now: datetime) -> list[dict[str, Any]]:
    """`server list --json`: the servers not superseded by a newer start of their name."""
    return [{"name": s.name, "groups": list(s.groups), "threads": s.threads, "running": s.running,
             "last_seen": iso(s.last_seen), "alive": s.alive(now)} for s in current(views.servers(), now)]


def status_document(views: "Views", now: datetime, rows: int) -> dict[str, Any]:
    """`status --json`: counts, then up to `rows` jobs, runs, running tasks and servers, and open problems."""
    servers = servers_document(views, now)
    started_runs, queued_runs, scheduled_runs = views.active_counts(now)
    jobs = sorted((job_summary(j, now) for j in views.jobs()),
                  key=lambda j: (j["next_fire"] is None, j["next_fire"] or "", j["name"]))
    started = views.active_runs(MAX_RUNNING_RUNS, started=True)
    running_tasks = [{"run_id": str(r.id), "job": r.job, "task": t.spec.name, "attempt": t.attempt,
                      "server": t.server, "started_at": iso(t.started_at)}
                     for r in started for t in r.tasks.values() if t.status == "running"]
    live = sorted(servers, key=lambda s: (not s["alive"], s["name"]))
    counts = {"jobs": len(jobs), "scheduled_jobs": sum(j["scheduled"] for j in jobs),
              "active_runs": started_runs + queued_runs + scheduled_runs, "started_runs": started_runs,
              "queued_runs": queued_runs, "scheduled_runs": scheduled_runs, "running_tasks": len(running_tasks),
              "servers": len(servers), "live_servers": sum(s["alive"] for s in servers)}
    return {"at": iso(now), "counts": counts, "jobs": jobs[:rows],
            "runs": [run_summary(r, now) for r in views.active_runs(rows)],
            "running_tasks": running_tasks[:rows], "servers": live[:rows],
            "problems": [p.to_dict() for p in views.problems() if p.rested is None]}


def job_summary(row: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """A job as `job list` shows it, with its next fire time."""
    definition, scheduled_at = row["definition"], row["scheduled_at"]
    next_fire = None
    if scheduled_at is not None and definition["schedule"] is not None:
        after = max(now, row["last_fire"] or scheduled_at)
        next_fire = Schedule.from_dict(definition["schedule"]).next_fire(after, scheduled_at)
    return {"name": definition["name"], "group": definition["group"], "scheduled": scheduled_at is not None,
            "next_fire": iso_seconds(next_fire) if next_fire else None, "tasks": len(definition["tasks"]),
            "priority": definition["priority"], "description": definition["description"],
            "skipped_fires": row["skipped"], "last_skip": row["last_skip"]}


def iso_seconds(moment: datetime) -> str:
    """A fire time in UTC with `Z` (microseconds only where the schedule has them)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
