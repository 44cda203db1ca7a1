"""Alerts: whether a completed run is announced, to whom, and what the announcement says.

A job's `alerts` policy decides (`always`, `on-error`: the run did not succeed, `never`). The submitter hears it (for
a scheduled run, the job's owner, who is the run's user): a system message always, an e-mail when they have an
address, and each of the job's `notify` webhooks a POST. Everything here is a pure function of the run.
"""

from collections.abc import Sequence
from datetime import datetime

from actorbatch.domain.runs import Run
from actorbatch.domain.statuses import RunStatus, TaskStatus
from actorbatch.frozen import frozen

MAX_LISTED_TASKS = 20  # failed tasks named in a message or an e-mail; the rest are counted
MAX_EXIT_CHARS = 300  # of each exit status quoted


def alerts_on(policy: str, status: str) -> bool:
    """Whether a run that ended `status` is announced under `policy` (on-error: failed or cancelled)."""
    if policy == "always":
        return True
    return policy == "on-error" and status != RunStatus.SUCCEEDED


@frozen
class Outcome:
    """What an announcement of a completed run says; times are those of the run."""

    run_id: str
    job: str
    user: str
    status: str
    failed: tuple[tuple[str, str], ...]  # (task, exit status) of the tasks that failed, at most MAX_LISTED_TASKS
    more_failed: int  # failed tasks beyond those
    started_at: datetime | None
    ended_at: datetime | None


def outcome(run: Run, status: str) -> Outcome:
    """The announcement of `run`, which ended `status`."""
    failed = [(name, (t.exit_status or "")[:MAX_EXIT_CHARS]) for name, t in run.tasks.items()
              if t.status == TaskStatus.FAILED]
    return Outcome(str(run.id), run.job, run.user, str(status), tuple(failed[:MAX_LISTED_TASKS]),
                   max(0, len(failed) - MAX_LISTED_TASKS), run.started_at, run.ended_at)


def duration_s(started_at: datetime | None, ended_at: datetime | None) -> float | None:
    return (ended_at - started_at).total_seconds() if started_at and ended_at else None


def failed_line(failed: Sequence[Sequence[str]], more: int) -> str:
    """`extract (exit 1), load (missing privilege: x)` and how many more."""
    named = ", ".join(f"{task} ({exit_status})" for task, exit_status in failed)
    return named + (f" and {more} more" if more else "")


def message_text(job: str, run_id: str, status: str, failed: Sequence[Sequence[str]], more: int) -> str:
    """The system message: one line."""
    text = f"{job} {status}: run {run_id}"
    return f"{text}; failed: {failed_line(failed, more)}" if failed else text


def _time(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "-"


def email_text(job: str, run_id: str, status: str, failed: Sequence[Sequence[str]], more: int,
               started_at: datetime | None, ended_at: datetime | None) -> tuple[str, str]:
    """(subject, body) of the e-mail: the job, the run, its status, its failed tasks with their exit statuses,
    its times, and the command that shows it."""
    seconds = duration_s(started_at, ended_at)
    lines = [f"Job:      {job}", f"Run:      {run_id}", f"Status:   {status}", f"Started:  {_time(started_at)}",
             f"Ended:    {_time(ended_at)}", f"Duration: {'-' if seconds is None else f'{seconds:.1f} s'}"]
    if failed:
        lines += ["", "Failed tasks:", *(f"  {task}: {exit_status}" for task, exit_status in failed)]
        if more:
            lines.append(f"  ... and {more} more")
    lines += ["", f"Show the run: actorbatch run show {run_id}", ""]
    return f"[actorbatch] {job} {status} (run {run_id[:8]})", "\n".join(lines)
