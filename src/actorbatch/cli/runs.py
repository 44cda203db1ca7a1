"""`actorbatch run ...` and `actorbatch explain`: the process monitor, a run's tasks and logs, waiting and
cancelling."""

import time
from typing import TYPE_CHECKING, Annotated

import typer

from actorbatch.cli import emit
from actorbatch.cli.common import AsOf, Json, RunId, usage, with_client
from actorbatch.cli.shape import Cli
from actorbatch.domain.limits import MAX_DURATION_S, check_number
from actorbatch.domain.statuses import RunStatus

if TYPE_CHECKING:
    from actorbatch.api import Client

run_app = Cli(help="The process monitor: runs, their tasks and logs.", no_args_is_help=True)


@run_app.command("list")
def run_list(job: Annotated[str | None, typer.Option("--job", metavar="NAME", help="Only this job's runs.")] = None,
             status: Annotated[RunStatus | None, typer.Option("--status", help="Only runs in this status.")] = None,
             since: Annotated[str | None, typer.Option("--since", metavar="TIME",
                                                       help="Due at or after this ISO 8601 time (UTC without an "
                                                            "offset).")] = None,
             limit: Annotated[int, typer.Option("--limit", metavar="N", min=1, max=1_000_000,
                                                help="At most this many rows.")] = 50,
             as_json: Json = False) -> None:
    """The process monitor: one row per run, newest due first."""
    from actorbatch import api

    with usage():
        after = api.parse_time(since, field="--since") if since is not None else None
    runs = with_client(lambda c: c.runs(job, status and status.value, after, limit), problems=True)
    if as_json:
        emit.emit_json(runs)
    else:
        from actorbatch.cli import render  # rich: for the terminal only

        render.runs_table(runs)


@run_app.command("show")
def run_show(run_id: RunId, as_of: AsOf = None, as_json: Json = False) -> None:
    """A run's tasks: status, attempts, server, start, end, exit status, result; who ran it, with which params;
    with --as-of, as it was then."""
    from actorbatch import api
    from actorbatch.cli import render

    with usage():
        moment = api.parse_time(as_of, field="--as-of") if as_of is not None else None
    run = with_client(lambda c: c.run(run_id, moment), problems=True)
    if as_json:
        from actorbatch.projections.documents import run_show_json

        emit.emit_json(run_show_json(run))
    else:
        render.run_detail(run)
        if run["archived"]:
            typer.echo("archived: moved from the live log by `actorbatch history prune` (read back from the archive)")


@run_app.command("retry")
def run_retry(run_id: RunId,
              everything: Annotated[bool, typer.Option("--all", help="Run every task again, the ones that "
                                                                     "succeeded too.")] = False,
              as_json: Json = False) -> None:
    """Run a finished run again (same job version and params): tasks that succeeded keep their outcome and
    result, the rest run. Prints the new run's id."""

    new_id = with_client(lambda c: c.retry(run_id, everything=everything))
    if as_json:
        emit.emit_json({"run_id": str(new_id), "status": "running"})
    else:
        typer.echo(str(new_id))


@run_app.command("logs")
def run_logs(run_id: RunId, task: Annotated[str | None, typer.Option("--task", metavar="NAME",
                                                                     help="Only this task's lines.")] = None,
             follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing until the run ends.")]
             = False,
             as_json: Annotated[bool, typer.Option("--json", help="JSON: one document; with --follow, one JSON "
                                                                  "object per line.")] = False) -> None:
    """The run log: what each attempt printed or logged, with times (UTC)."""
    from actorbatch.cli import render

    def show(client: "Client") -> None:
        position, shown = 0, []
        while True:
            ended = client.run(run_id)["status"] in ("succeeded", "failed", "cancelled")
            lines = client.logs(run_id, task, position)  # read after the status check: no line shipped before
            position = lines[-1].position if lines else position  # the end is missed
            if as_json and not follow:
                shown.extend(lines)
            else:
                render.log_lines(lines, as_json)
            if not follow or ended:
                break
            time.sleep(0.25)
        if as_json and not follow:
            emit.emit_json([render.log_line(line) for line in shown])

    with_client(show)


@run_app.command("cancel")
def run_cancel(run_id: RunId) -> None:
    """Cancel a run: waiting tasks never start, running ones are asked to stop."""
    typer.echo(f"cancelled {with_client(lambda c: c.cancel(run_id))}")


@run_app.command("wait")
def run_wait(run_id: RunId,
             timeout: Annotated[float | None, typer.Option("--timeout", metavar="SECONDS",
                                                           help="Give up (exit 1) after this long.")] = None,
             as_json: Json = False) -> None:
    """Block until the run is complete; exit 0 if it succeeded, 1 otherwise."""

    with usage():
        if timeout is not None:
            check_number(timeout, "--timeout", 0, MAX_DURATION_S, unit="s")
    run = with_client(lambda c: c.wait(run_id, timeout))
    if as_json:
        emit.emit_json(run)
    else:
        typer.echo(f"run {run['id']} {run['status']}")
    raise typer.Exit(0 if run["status"] == "succeeded" else 1)


def explain_run(run_id: RunId, task: Annotated[str | None, typer.Option("--task", metavar="NAME",
                                                                        help="Only this task.")] = None,
                cite: Annotated[bool, typer.Option("--cite", help="With --json: each reason as {\"text\", "
                                                   "\"events\"}, the events it rests on.")] = False,
                as_json: Json = False) -> None:
    """Why each task of a run ran, waited, was skipped or retried, with the events behind each answer (a skipped
    fire time's full id explains the skip)."""
    from actorbatch.cli import render

    reasons = with_client(lambda c: c.explain(run_id, task, cite=True), problems=True)
    if as_json:
        emit.emit_json(reasons if cite else {name: [r["text"] for r in found] for name, found in reasons.items()})
        return
    for name, found in reasons.items():
        render.console.print(f"[bold]{name}[/bold]")
        for reason in found:
            render.console.print(f"  {reason['text']}", markup=False)
            if reason["events"]:
                cited = "; ".join(f"{c['subject']} v{c['version']} {c['action']} {render.short_time(c['at'])}"
                                  for c in reason["events"])
                render.console.print(f"    events: {cited}", markup=False, style="dim")
