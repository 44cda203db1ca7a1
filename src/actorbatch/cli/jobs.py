"""`actorbatch job ...`: register, inspect, schedule and run jobs."""

import json
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from actorbatch.cli import emit
from actorbatch.cli.common import JobName, Json, failures, usage, with_client
from actorbatch.cli.shape import Cli
from actorbatch.domain.limits import MAX_KEY_CHARS, check_params, check_text, show
from actorbatch.errors import InvalidJob

if TYPE_CHECKING:
    from actorbatch.api import Client

job_app = Cli(help="Register, inspect and run jobs.", no_args_is_help=True)


@job_app.command("add")
def job_add(file: Annotated[str, typer.Argument(metavar="FILE", help="TOML job file.", show_default=False)],
            replace: Annotated[bool, typer.Option("--replace", help="Change existing jobs.")] = False) -> None:
    """Register the job(s) of a TOML file: all of them or, on any error, none."""
    with failures():
        from actorbatch import api

        jobs = api.load_job_file(file)
    actions = with_client(lambda c: c.add_jobs(jobs, replace))
    for job, action in zip(jobs, actions, strict=True):
        typer.echo(f"{action} job {job.name} ({len(job.tasks)} tasks)")


@job_app.command("validate")
def job_validate(file: Annotated[str, typer.Argument(metavar="FILE", help="TOML job file.", show_default=False)]
                 ) -> None:
    """Check a job file as `job add` would, without a store; writes nothing."""
    with failures():
        from actorbatch import api

        jobs = api.load_job_file(file)
    for job in jobs:
        typer.echo(f"valid job {job.name} ({len(job.tasks)} tasks)")


@job_app.command("list")
def job_list(as_json: Json = False) -> None:
    """Every registered job."""
    jobs = with_client(lambda c: c.jobs(), problems=True)
    if as_json:
        from actorbatch.projections.documents import job_list_json

        emit.emit_json(job_list_json(jobs))
    else:
        from actorbatch.cli import render  # rich: for the terminal only

        render.jobs_table(jobs)


@job_app.command("show")
def job_show(name: JobName, as_json: Json = False) -> None:
    """One job: its settings, its schedule in words with the next fire times, its tasks with their settings."""
    from actorbatch.cli.jobview import show_job

    def read(client: "Client") -> tuple[dict[str, Any], list[dict[str, str]]]:
        job = client.job(name)
        return job, client.next_fires(name, 3) if job["scheduled"] else []

    job, fires = with_client(read, problems=True)
    if as_json:
        emit.emit_json(job)
    else:
        show_job(job, fires)


@job_app.command("next")
def job_next(name: JobName,
             count: Annotated[int, typer.Option("--count", metavar="N", min=1, max=1000,
                                                help="How many fire times.")] = 5,
             start: Annotated[str | None, typer.Option("--from", metavar="TIME",
                                                       help="From this ISO 8601 time (in the job's zone without "
                                                            "an offset); default now.")] = None,
             as_json: Json = False) -> None:
    """The next fire times of a scheduled job, in UTC and local time: check a schedule before trusting it."""
    from actorbatch import api
    from actorbatch.cli import render

    def fires(client: "Client") -> list[dict[str, str]]:
        tz = client.job_zone(name)
        with usage():
            after = api.parse_time(start, tz, "--from") if start is not None else None
        return client.next_fires(name, count, after)

    result = with_client(fires)
    if as_json:
        emit.emit_json(result)
    else:
        render.table(None, ["utc", "local"], [(f["utc"], f["local"]) for f in result], "no more fire times")


@job_app.command("schedule")
def job_schedule(name: JobName) -> None:
    """Start the job's schedule: it fires from the next fire time on."""
    changed = with_client(lambda c: c.schedule(name))
    typer.echo(f"scheduled job {name}" if changed else f"job {name} is already scheduled (nothing to do; "
               "`job reschedule` restarts it)")


@job_app.command("unschedule")
def job_unschedule(name: JobName) -> None:
    """Stop future runs (fire times while unscheduled are never missed: they do not exist)."""
    changed = with_client(lambda c: c.unschedule(name))
    typer.echo(f"unscheduled job {name}" if changed else f"job {name} is not scheduled (nothing to do)")


@job_app.command("reschedule")
def job_reschedule(name: JobName) -> None:
    """Restart the job's schedule from now: `every` counts from here, earlier fire times are forgotten."""
    with_client(lambda c: c.schedule(name, restart=True))
    typer.echo(f"rescheduled job {name}")


@job_app.command("remove")
def job_remove(name: JobName,
               force: Annotated[bool, typer.Option("--force", help="Cancel the job's pending runs (scheduled or "
                                                                   "running) and remove it.")] = False) -> None:
    """Remove a job (its finished runs and their history stay). A job with pending runs is refused unless
    --force, which cancels them."""
    cancelled = with_client(lambda c: c.remove_job(name, force=force))
    typer.echo(f"removed job {name}" + (f"; cancelled its {len(cancelled)} pending runs" if cancelled else ""))


@job_app.command("run")
def job_run(name: JobName,
            at: Annotated[str | None, typer.Option("--at", metavar="TIME",
                                                   help="Run once at this ISO 8601 time (in the job's zone "
                                                        "without an offset).")] = None,
            param: Annotated[list[str] | None, typer.Option("--param", metavar="K=V",
                                                            help="A run parameter (V read as JSON if it parses); "
                                                                 "repeat for more.")] = None,
            key: Annotated[str | None, typer.Option("--key", metavar="KEY",
                                                    help="Idempotency key: a repeated key for this job returns "
                                                         "the first run and creates none.")] = None,
            as_json: Json = False) -> None:
    """Run a job now, or once later; prints the run id."""
    with usage():
        params = check_params(dict(_param(p) for p in param or []), "--param")
        if key is not None:
            check_text(key, "--key", MAX_KEY_CHARS)
    from actorbatch import api

    def submit(client: "Client") -> tuple[Any, str, datetime | None]:
        tz = client.job_zone(name)
        with usage():
            when = api.parse_time(at, tz, "--at") if at is not None else None
        run_id = client.run_job(name, params, when, key)
        now = client.clock.now()
        return run_id, "scheduled" if when is not None and when > now else "running", now

    run_id, status, now = with_client(submit)
    if at is not None and status == "running":
        typer.echo(f"note: --at {at} is not in the future (now {now:%Y-%m-%d %H:%M:%S} UTC): the run is due now",
                   err=True)
    if as_json:
        emit.emit_json({"run_id": str(run_id), "status": status})
    else:
        typer.echo(str(run_id))


@job_app.command("backfill")
def job_backfill(name: JobName,
                 start: Annotated[str, typer.Option("--from", metavar="TIME", show_default=False,
                                                    help="First fire time to fill (ISO 8601, in the job's zone "
                                                         "without an offset), included.")],
                 end: Annotated[str, typer.Option("--to", metavar="TIME", show_default=False,
                                                  help="End of the range, excluded; not later than now.")],
                 dry_run: Annotated[bool, typer.Option("--dry-run", help="List the fire times and whether each "
                                                                         "has a run; create nothing.")] = False,
                 as_json: Json = False) -> None:
    """One run per fire time of the job's schedule in [--from, --to), oldest first, with the scheduler's run ids:
    a fire time that has a run already gets none, so a repeat never duplicates."""
    from actorbatch import api
    from actorbatch.cli import render

    def fill(client: "Client") -> list[dict[str, Any]]:
        tz = client.job_zone(name)
        with usage():
            first, last = api.parse_time(start, tz, "--from"), api.parse_time(end, tz, "--to")
        try:
            return client.backfill(name, first, last, dry_run=dry_run)
        except InvalidJob as error:  # the range itself: a bad option value
            with usage():
                raise error from None

    found = with_client(fill)
    if as_json:
        emit.emit_json(found)
        return
    verb = "would create" if dry_run else "created"
    render.table(None, ["fire time", "run", "run exists" if dry_run else "created"],
                 [(f["fire_time"], f["run_id"], ("no" if f["created"] else "yes") if dry_run else
                   ("yes" if f["created"] else "no, it existed")) for f in found], "no fire times in that range")
    typer.echo(f"{verb} {sum(f['created'] for f in found)} of {len(found)} runs", err=True)


def _param(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise InvalidJob(f"--param: expected K=V, got {show(text)}")
    try:
        return key, json.loads(value)
    except RecursionError:
        raise InvalidJob(f"--param: {key}: nested too deeply") from None
    except ValueError:
        return key, value
