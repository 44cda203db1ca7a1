"""Why a task ran, waited, was skipped or retried: the run's own state, put into words."""

from actorbatch.domain.runs import Run
from actorbatch.domain.statuses import TaskStatus
from actorbatch.domain.tasks import TaskRun, condition_met

_VERB = {"succeeded": "succeeded", "failed": "failed", "ended": "ended (succeeded or failed)"}
_SUMMARY = {TaskStatus.WAITING: "waits for", TaskStatus.SKIPPED: "was skipped because it needs"}


def explain(run: Run, task: str | None = None) -> dict[str, list[str]]:
    """For each task (or just `task`), the sentences that explain its state."""
    return {name: _explain_task(run, state) for name, state in run.tasks.items() if task in (None, name)}


def _explain_task(run: Run, state: TaskRun) -> list[str]:
    lines = [_conditions(run, state)]
    for entry in state.history:
        outcome = entry["outcome"] or "still running"
        late = f"; a late result ({entry['late_result']}) was ignored" if "late_result" in entry else ""
        lines.append(f"attempt {entry['attempt']} on server {entry['server']}: {outcome}{late}")
    if state.status == TaskStatus.SUCCEEDED and not state.history and run.retry_of is not None:
        lines.append(f"kept from run {run.retry_of}: it succeeded there, as did every task it depends on")
    if state.status == TaskStatus.READY and state.not_before is not None and state.attempt:
        lines.append(f"retry {state.failures} of {state.spec.retries} waits until {state.not_before.isoformat()}")
    elif state.status == TaskStatus.READY:
        assert run.definition is not None
        lines.append(f"ready: starts when the run is due ({run.due_at and run.due_at.isoformat()}) and a live "
                     f"server of group {run.definition.group!r} has a free thread (see `server list`)")
    if state.status == TaskStatus.FAILED and state.spec.ignore_failure:
        lines.append("its failure is ignored: it does not fail the run")
    if state.status == TaskStatus.CANCELLED:
        lines.append(state.exit_status or "cancelled")
    return lines


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
