"""Every recorded event is a legal step from the state the log had just before it; fencing is one such rule.

The store only keeps (aggregate id, version) unique; everything else about an event's right to exist rests on the
decisions of the servers. So each appended event is judged against the fold of the log so far, before it is folded
in: versions follow one another without gaps, a claim takes a ready task, and a result (TaskSucceeded, TaskFailed)
counts only for the attempt that is running now; a late one must be recorded as ResultIgnored.
"""

from actorbatch.domain.events import Event, job_id
from actorbatch.domain.jobs import JobEvent
from actorbatch.domain.notifications import DeliveryClaimed, NotificationEvent
from actorbatch.domain.runs import (
    AttemptLost,
    FireSkipped,
    ResultIgnored,
    RunCancelled,
    RunCreated,
    RunEvent,
    TaskClaimed,
    TaskDenied,
    TaskFailed,
    TaskSucceeded,
    scheduled_run_id,
)
from actorbatch.domain.servers import ServerEvent, ServerStarted
from simulations.projection import Projection


def illegal(views: Projection, event: Event) -> tuple[str, str] | None:
    """(checker, why) if `event` may not follow the log as `views` folded it; None if it may."""
    if isinstance(event, RunCreated | FireSkipped):
        return _decision(views, event)
    if isinstance(event, RunEvent):
        return _run_step(views, event)
    if isinstance(event, JobEvent):
        job = views.jobs.get(event.originator_id)
        return _gap(event, job.version if job is not None else 0)
    if isinstance(event, NotificationEvent):
        notification = views.notifications.get(event.originator_id)
        if isinstance(event, DeliveryClaimed) and (notification is None or not notification.claimable(event.timestamp)):
            return "transitions", f"notification {event.originator_id} claimed while it is not claimable"
        return _gap(event, notification.version if notification is not None else 0)
    if isinstance(event, ServerEvent):
        server = views.servers.get(event.originator_id)
        if server is None and not isinstance(event, ServerStarted):
            return "transitions", f"{type(event).__name__} for a server that never started"
        return _gap(event, server.version if server is not None else 0)
    return None


def _gap(event: Event, version: int) -> tuple[str, str] | None:
    if event.originator_version != version + 1:
        return "transitions", (f"{type(event).__name__} of {event.originator_id} is v{event.originator_version} "
                               f"after v{version}: versions must follow one another")
    return None


def _decision(views: Projection, event: RunCreated | FireSkipped) -> tuple[str, str] | None:
    if event.originator_id in views.runs or event.originator_id in views.fires or event.originator_version != 1:
        return "transitions", f"a second decision for run id {event.originator_id}"
    if event.fire_time is not None:
        name = event.job if isinstance(event, FireSkipped) else event.definition["name"]
        if event.originator_id != scheduled_run_id(job_id(name), event.fire_time):
            return "one-run-per-fire-time", (f"the run for {name} at {event.fire_time} has id {event.originator_id},"
                                             " not the one derived from the job and the fire time")
    return None


def _run_step(views: Projection, event: RunEvent) -> tuple[str, str] | None:
    run = views.runs.get(event.originator_id)
    if run is None:
        return "transitions", f"{type(event).__name__} for run {event.originator_id}, which was never created"
    gap = _gap(event, run.version)
    if gap is not None or isinstance(event, RunCancelled):
        return gap if gap is not None or not run.complete else ("transitions", f"run {run.id} cancelled after it ended")
    task = getattr(event, "task", "")
    state = run.tasks.get(task)
    if state is None:
        return "transitions", f"run {run.id} has no task {task!r}"
    running = state.status == "running"
    where = f"run {run.id} ({run.job}), task {task}"
    if isinstance(event, TaskClaimed) and (state.status != "ready" or event.attempt != state.attempt + 1):
        return "transitions", f"{where}: attempt {event.attempt} claimed while {state.status} at {state.attempt}"
    if isinstance(event, TaskSucceeded | TaskFailed) and not (running and event.attempt == state.attempt):
        return "fencing", (f"{where}: the result of attempt {event.attempt} was accepted while the task is "
                           f"{state.status} at attempt {state.attempt}; a stale result must be ignored")
    if isinstance(event, AttemptLost) and not (running and event.attempt == state.attempt
                                               and event.server == state.server):
        return "transitions", f"{where}: attempt {event.attempt} lost while {state.status} at {state.attempt}"
    if isinstance(event, TaskDenied) and state.status != "ready":
        return "transitions", f"{where}: denied (missing {event.privilege}) while {state.status}"
    if isinstance(event, ResultIgnored) and running and event.attempt == state.attempt:
        return "fencing", f"{where}: the result of the running attempt {event.attempt} was ignored"
    return None
