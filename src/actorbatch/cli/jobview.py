"""`job show` on a terminal: the job's settings, its schedule in words with the next fire times, and every task
with its settings, commands quoted as a shell would take them."""

import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from actorbatch.cli import render
from actorbatch.web import words


def seconds_text(seconds: float | None) -> str:
    return "-" if seconds is None else words.interval(seconds)


def schedule_text(table: Mapping[str, Any]) -> str:
    """A [schedule] table in words, with what happens to missed and overlapping fire times."""
    jitter = f", each run up to {words.interval(float(table['jitter']))} late (jitter)" if table.get("jitter") else ""
    return (f"{words.schedule(table)}{jitter}; missed fire times: {table.get('misfire', 'run-once')}; while the "
            f"previous run is active: {table.get('overlap', 'skip')}")


def body_text(task: Mapping[str, Any]) -> str:
    return str(task["run"]) if task["run"] else shlex.join(task["command"])


def show_job(job: Mapping[str, Any], fires: Sequence[Mapping[str, str]]) -> None:
    definition = job["definition"]
    console = render.console
    console.print(f"job {job['name']}" + (f": {definition['description']}" if definition["description"] else ""),
                  markup=False)
    console.print(f"group {definition['group']}, priority {definition['priority']}, alerts {definition['alerts']}",
                  markup=False)
    if definition["schedule"] is None:
        console.print("schedule: none (runs when asked: job run)", markup=False)
    else:
        state = "scheduled" if job["scheduled"] else "not scheduled (job schedule starts it)"
        console.print(f"schedule: {schedule_text(definition['schedule'])}; {state}", markup=False)
        if job["scheduled"]:
            listed = ", ".join(f"{f['utc']} ({f['local']})" for f in fires) or "none: the schedule has ended"
            console.print(f"next fires: {listed}", markup=False)
    render.table("Tasks", ["task", "body", "after", "retries", "retry delay", "timeout", "lost retries",
                           "ignore failure", "params"],
                 [(t["name"], body_text(t), f" {t['when']} ".join(f"{p}={c}" for p, c in t["after"]) or "-",
                   t["retries"], seconds_text(t["retry_delay_s"]), seconds_text(t["timeout_s"]), t["lost_retries"],
                   "yes" if t["ignore_failure"] else "no", render.compact(t["params"]) if t["params"] else "-")
                  for t in definition["tasks"]], "no tasks")
