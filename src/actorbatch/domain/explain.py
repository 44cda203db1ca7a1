"""Why a task ran, waited, was skipped or retried, in words, each answer citing the events behind it.

`reasons` works from the run's state and events and, for what the run alone cannot say (why a ready task has not
started; why a scheduled run came late), the servers as the log knows them and the current time. `explain` keeps
to the answers the run's state gives (the sentences earlier releases gave, unchanged).
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from actorbatch.domain.events import Event
from actorbatch.domain.jobs import JobAdded, JobRemoved, JobReplaced, JobScheduled, JobUnscheduled
from actorbatch.domain.runs import AttemptLost, FireSkipped, Run, RunCancelled, RunCreated, TaskClaimed
from actorbatch.domain.servers import Server
from actorbatch.domain.statuses import TaskStatus
from actorbatch.domain.tasks import TERMINAL, TaskRun, condition_met
from actorbatch.frozen import frozen

_VERB = {"succeeded": "succeeded", "failed": "failed", "ended": "ended (succeeded or failed)"}
_SUMMARY = {TaskStatus.WAITING: "waits for", TaskStatus.SKIPPED: "was skipped because it needs"}
MISSING_PRIVILEGE = "missing privilege: "
LATE_S = 60.0  # a scheduled run created this long after its fire time: no scheduler was running then


@frozen
class Cite:
    """One event behind an answer: whose (`run`, `server NAME`, `job NAME`), which version, what, when."""

    subject: str
    version: int
    action: str
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"subject": self.subject, "version": self.version, "action": self.action,
                "at": self.at.isoformat()}


@frozen
class Reason:
    text: str
    events: tuple[Cite, ...] = ()
    beyond_state: bool = False  # needs more than the run's state: its events, the servers or the time

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "events": [c.to_dict() for c in self.events]}


@frozen
class Context:
    """What the run alone cannot tell: the time, the servers, and a late scheduled run's missed fire times."""

    now: datetime
    servers: Sequence[Server] = ()
    misfire: str = "run-once"
    missed: Sequence[datetime] = ()  # fire times of the job before this run's with no run of their own


def explain(run: Run, task: str | None = None) -> dict[str, list[str]]:
    """For each task (or just `task`), the sentences that explain its state."""
    return {name: [r.text for r in found if not r.beyond_state] for name, found in reasons(run, (), None, task).items()}


def reasons(run: Run, events: Sequence[Event], context: Context | None, task: str | None = None
            ) -> dict[str, list[Reason]]:
    """For each task (or just `task`), the reasons for its state, citing `events` (the run's, in order)."""
    cites = _Cites(events)
    return {name: _task(run, state, cites, context) for name, state in run.tasks.items() if task in (None, name)}


def skipped_fire(event: FireSkipped, overlap: str) -> Reason:
    """Why a fire time of a schedule has no run: the overlap policy skipped it."""
    return Reason(f"no run for fire time {event.fire_time.isoformat()} of job {event.job}: {event.reason} "
                  f"(overlap policy {overlap!r})", (Cite("fire", 1, event.action, event.timestamp),), True)


def job_state(name: str, events: Sequence[Event], next_fire: datetime | None, last_skip: str | None
              ) -> list[Reason]:
    """Why a job's schedule does or does not fire: whether it is scheduled (and since when, by whom), its next fire
    time, and the last fire its overlap policy skipped."""
    changes = [e for e in events if isinstance(e, JobAdded | JobReplaced | JobRemoved | JobScheduled | JobUnscheduled)]
    if not changes:
        return []
    last = changes[-1]
    cite = (_cite(last, f"job {name}"),)
    user = getattr(last, "user", "")
    if isinstance(last, JobRemoved):
        found = [Reason(f"removed at {last.timestamp.isoformat()} by {user}: no runs until it is added again", cite)]
    elif isinstance(last, JobUnscheduled):
        found = [Reason(f"unscheduled at {last.timestamp.isoformat()} by {user}: its fire times do not exist until "
                        f"`actorbatch job schedule {name}` (none are missed meanwhile)", cite)]
    elif next_fire is None:
        found = [Reason("not scheduled: it has no [schedule], or its schedule has ended; it runs on `job run`",
                        cite)]
    else:
        found = [Reason(f"scheduled since {last.timestamp.isoformat()} ({last.action} by {user}); next fire time "
                        f"{next_fire.isoformat()}", cite)]
    if last_skip is not None:
        found.append(Reason(f"its last skipped fire time: {last_skip}"))
    return found


def _cite(event: Event, subject: str = "run") -> Cite:
    return Cite(subject, event.originator_version, event.action, event.timestamp)


class _Cites:
    """The run's events by what they are about."""

    def __init__(self, events: Sequence[Event]) -> None:
        self.attempts: dict[tuple[str, int], list[Cite]] = {}
        self.created: list[Cite] = []
        self.cancelled: list[Cite] = []
        for event in events:
            if isinstance(event, RunCreated):
                self.created = [_cite(event)]
            elif isinstance(event, RunCancelled):
                self.cancelled = [_cite(event)]
            elif hasattr(event, "task"):  # a denied task never had an attempt: its key is attempt 0
                self.attempts.setdefault((event.task, getattr(event, "attempt", 0)), []).append(_cite(event))

    def attempt(self, task: str, attempt: int) -> tuple[Cite, ...]:
        return tuple(self.attempts.get((task, attempt), ()))

    def ended(self, state: TaskRun) -> tuple[Cite, ...]:
        """The event that ended the task's last attempt (or the run's cancellation)."""
        last = self.attempt(state.spec.name, state.attempt)
        ends = [c for c in last if c.action != TaskClaimed.ACTION]
        return tuple(ends[-1:]) or tuple(self.cancelled)


def _task(run: Run, state: TaskRun, cites: _Cites, context: Context | None) -> list[Reason]:
    name = state.spec.name
    parents = tuple(c for parent, _ in state.spec.after if run.tasks[parent].status in TERMINAL
                    for c in cites.ended(run.tasks[parent]))
    found = [Reason(_conditions(run, state), parents or tuple(cites.created))]
    for entry in state.history:
        outcome = entry["outcome"] or "still running"
        late = f"; a late result ({entry['late_result']}) was ignored" if "late_result" in entry else ""
        found.append(Reason(f"attempt {entry['attempt']} on server {entry['server']}: {outcome}{late}",
                            cites.attempt(name, entry["attempt"])))
        if str(outcome).startswith("lost: "):
            found.append(Reason(_lost(state, entry), cites.attempt(name, entry["attempt"]), True))
    if state.status == TaskStatus.SUCCEEDED and not state.history and run.retry_of is not None:
        found.append(Reason(f"kept from run {run.retry_of}: it succeeded there, as did every task it depends on"))
    if state.status == TaskStatus.READY and state.not_before is not None and state.attempt:
        found.append(Reason(f"retry {state.failures} of {state.spec.retries} waits until "
                            f"{state.not_before.isoformat()}", cites.ended(state)))
    elif state.status == TaskStatus.READY:
        assert run.definition is not None
        found.append(Reason(f"ready: starts when the run is due ({run.due_at and run.due_at.isoformat()}) and a "
                            f"live server of group {run.definition.group!r} has a free thread (see `server list`)",
                            tuple(cites.created)))
    if state.status == TaskStatus.READY and context is not None:
        found.append(_waiting(run, state, cites, context))
    if state.status == TaskStatus.FAILED and state.spec.ignore_failure:
        found.append(Reason("its failure is ignored: it does not fail the run", cites.ended(state)))
    if state.status == TaskStatus.FAILED and (state.exit_status or "").startswith(MISSING_PRIVILEGE):
        privilege = (state.exit_status or "")[len(MISSING_PRIVILEGE):]
        found.append(Reason(f"failed without running: the run acts as {run.user}, who lacks the privilege "
                            f"{privilege}; grant it (`actorbatch user grant {run.user} {privilege}`) and retry the "
                            "run", cites.ended(state), True))
    if state.status == TaskStatus.CANCELLED:
        found.append(Reason(state.exit_status or "cancelled", tuple(cites.cancelled)))
    if context is not None and run.fire_time is not None and name == next(iter(run.tasks)):
        tardy = _late(run, cites, context)
        if tardy is not None:
            found.append(tardy)
    return found


def _conditions(run: Run, state: TaskRun) -> str:
    spec = state.spec
    if not spec.after:
        return "no conditions: ready as soon as the run was due"
    parts = []
    for parent, condition in spec.after:
        status = run.tasks[parent].status
        met = condition_met(status, condition)
        verdict = "not yet decided" if met is None else "met" if met else "never met"
        parts.append(f"{parent} {_VERB[condition]}: {verdict} ({parent} is {status})")
    joiner = "all of" if spec.when == "all" else "any of"
    summary = _SUMMARY.get(state.status, "needed")
    return f"{summary} {joiner}: " + "; ".join(parts)


def _lost(state: TaskRun, entry: dict[str, Any]) -> str:
    lost = sum(str(e["outcome"] or "").startswith("lost: ") for e in state.history[:state.history.index(entry) + 1])
    then = "it failed: too many lost attempts" if lost > state.spec.lost_retries else \
        "it was retried at once, without using one of its retries"
    return (f"attempt {entry['attempt']}'s lease ran out: server {entry['server']} stopped renewing it (it died or "
            f"lost the store) and another server reaped it ({AttemptLost.ACTION}); lost attempt {lost} of "
            f"{state.spec.lost_retries} allowed: {then}")


def _waiting(run: Run, state: TaskRun, cites: _Cites, context: Context) -> Reason:
    """Why a ready task has not started by `context.now`."""
    assert run.definition is not None and run.due_at is not None
    now, group = context.now, run.definition.group
    if run.due_at > now:
        return Reason(f"the run is due at {run.due_at.isoformat()}, later than now", tuple(cites.created), True)
    if state.not_before is not None and state.not_before > now:
        return Reason(f"its next attempt may start at {state.not_before.isoformat()}", cites.ended(state), True)
    serving = [s for s in context.servers if group in s.groups]
    live = [s for s in serving if s.alive(now)]
    if not live:
        gone = "; ".join(f"{s.name} {'stopped' if s.stopped else 'silent'} since {_at(s.last_seen)}"
                         for s in serving) or "none ever started"
        return Reason(f"no live server serves group {group!r} ({gone}): start one with "
                      f"`actorbatch server start --groups {group}`", _server_cites(serving), True)
    closed = [s for s in live if s.capacity(now) == 0]
    if len(closed) == len(live):
        windows = "; ".join(f"{s.name}: window {s.window_at(now)} in {s.timezone}" for s in closed)
        return Reason(f"every live server of group {group!r} has 0 threads now ({windows})",
                      _server_cites(closed), True)
    busy = "; ".join(f"{s.name} runs {s.running} of {s.capacity(now)}" for s in live)
    return Reason(f"waits for a free thread of a live server of group {group!r} ({busy}), higher priority and "
                  "earlier due work first", _server_cites(live), True)


def _server_cites(servers: Sequence[Server]) -> tuple[Cite, ...]:
    return tuple(Cite(f"server {s.name}", s.version, "server.stopped" if s.stopped else "server.heartbeat",
                      s.last_seen) for s in servers if s.last_seen is not None)


def _at(moment: datetime | None) -> str:
    return moment.isoformat() if moment else "never"


def _late(run: Run, cites: _Cites, context: Context) -> Reason | None:
    """A scheduled run created long after its fire time: the fire was missed while no scheduler ran."""
    assert run.fire_time is not None and run.created_at is not None
    late_s = (run.created_at - run.fire_time).total_seconds()
    if late_s < LATE_S:
        return None
    missed = list(context.missed)
    shown = ", ".join(m.isoformat() for m in missed[:5]) + (f" and {len(missed) - 5} more" if len(missed) > 5 else "")
    decision = {"run-once": f"run-once: this one run, for the latest; the {len(missed)} earlier missed fire time(s) "
                            f"got none ({shown})" if missed else "run-once: this one run, for the latest",
                "run-all": "run-all: one run per missed fire time, oldest first; this is one of them",
                "skip": "skip: no run (this one was created otherwise)"}[context.misfire]
    return Reason(f"created at {run.created_at.isoformat()}, {late_s:.0f} s after its fire time "
                  f"{run.fire_time.isoformat()}: no scheduler was running then; the job's misfire policy decided "
                  f"{decision}", tuple(cites.created), True)
