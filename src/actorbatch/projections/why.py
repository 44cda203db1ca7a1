"""What `explain` needs beyond a run's state, gathered from the log and the read models: the run's events (archived
ones too), the servers, and for a scheduled run created late, the fire times of its job that got no run."""

from datetime import datetime
from uuid import UUID

from actorbatch.domain.events import Event, job_id
from actorbatch.domain.explain import Context, Reason, job_state, reasons, skipped_fire
from actorbatch.domain.recurrence import Schedule
from actorbatch.domain.runs import FireSkipped, Run
from actorbatch.projections.views import Views

MAX_MISSED = 1000  # fire times listed at most


def history(views: Views, run_id: UUID) -> list[Event]:
    """The run's events in order, archived and live."""
    archived = [views.store.decode(e) for e in views.projector.archive.of(run_id)]
    return [*archived, *views.store.events(run_id)]


def why(views: Views, run: Run, now: datetime, task: str | None = None) -> dict[str, list[Reason]]:
    """Every reason for each task of `run` (or just `task`), citing its events."""
    assert run.definition is not None
    schedule = run.definition.schedule
    misfire = schedule["misfire"] if schedule else "run-once"
    context = Context(now, views.servers(), misfire, _missed(views, run) if schedule else ())
    return reasons(run, history(views, run.id), context, task)


def fire(views: Views, fire_id: UUID) -> Reason | None:
    """Why the fire time whose would-be run id is `fire_id` has no run, if the overlap policy skipped it."""
    events = views.store.events(fire_id)
    if not events or not isinstance(events[0], FireSkipped):
        return None
    job = views.job(events[0].job)
    schedule = job["definition"]["schedule"] if job else None
    return skipped_fire(events[0], schedule["overlap"] if schedule else "skip")


def job(views: Views, name: str, now: datetime) -> list[Reason]:
    """Why the job named `name` does or does not fire (empty if there is no such job)."""
    row = views.job(name)
    next_fire = None
    if row is not None and row["scheduled_at"] is not None and row["definition"]["schedule"] is not None:
        after = max(now, row["last_fire"] or row["scheduled_at"])
        next_fire = Schedule.from_dict(row["definition"]["schedule"]).next_fire(after, row["scheduled_at"])
    return job_state(name, views.store.events(job_id(name)), next_fire, row["last_skip"] if row else None)


def _missed(views: Views, run: Run) -> list[datetime]:
    """The job's fire times after the last one before this run's that had a run, and before this run's, that got
    none (each missed while no scheduler ran)."""
    assert run.definition is not None and run.definition.schedule is not None
    if run.fire_time is None:
        return []
    job = views.job(run.job)
    if job is None or job["scheduled_at"] is None:
        return []
    fired = {r.fire_time for r in views.runs(job=run.job, limit=MAX_MISSED) if r.fire_time is not None}
    earlier = [f for f in fired if f < run.fire_time]
    since = max(earlier) if earlier else job["scheduled_at"]
    schedule = Schedule.from_dict(run.definition.schedule)
    fires = schedule.fires(since, run.fire_time, job["scheduled_at"], MAX_MISSED)
    return [f for f in fires if f not in fired and f != run.fire_time]
