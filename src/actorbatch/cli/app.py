"""The `actorbatch` command: parse, call the API, render. Exit 0 ok, 1 operation failed, 2 usage error."""

import contextlib
import json
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from actorbatch import api
from actorbatch.actors.server import BatchServer, ServerConfig
from actorbatch.cli import render
from actorbatch.domain.limits import MAX_DURATION_S, MAX_THREADS, check_number, check_params, check_user, show
from actorbatch.domain.servers import parse_window
from actorbatch.errors import ActorbatchError, InvalidJob, StoreFailed, StoreUnavailable

app = typer.Typer(help="Event-sourced batch jobs: run now, later or on a schedule, on one or many servers.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
job_app = typer.Typer(help="Register, inspect and run jobs.", no_args_is_help=True)
run_app = typer.Typer(help="The process monitor: runs, their tasks and logs.", no_args_is_help=True)
server_app = typer.Typer(help="Batch servers.", no_args_is_help=True)
projections_app = typer.Typer(help="The read models behind every listing.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)
app.add_typer(job_app, name="job")
app.add_typer(run_app, name="run")
app.add_typer(server_app, name="server")
app.add_typer(projections_app, name="projections")
app.add_typer(audit_app, name="audit")

T = TypeVar("T")
RunStatus = Enum("RunStatus", {s: s for s in api.RUN_STATUSES}, type=str)  # type: ignore[misc]
Json = Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")]


class Settings:
    db: str | None = None
    user: str | None = None
    debug: bool = False


settings = Settings()


@app.callback()
def main(
    db: Annotated[str | None, typer.Option("--db", envvar="ACTORBATCH_DB",
                                           help="Store URL (default sqlite:///actorbatch.db).")] = None,
    user: Annotated[str | None, typer.Option("--user", envvar="ACTORBATCH_USER",
                                             help="Acting user (default: the OS user).")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    settings.db, settings.user, settings.debug = db, user, debug
    with usage():
        if user:  # an empty one means the OS user, as everywhere
            check_user(user, "--user")


@contextmanager
def failures() -> Iterator[None]:
    """Turn errors into one line on stderr and exit code 1 (a traceback only with --debug)."""
    try:
        yield
    except (ActorbatchError, TimeoutError) as error:
        _refuse(error, 1)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except (typer.Exit, typer.Abort):
        raise
    except Exception as error:  # noqa: BLE001 - anything unexpected still gets one line, not a traceback
        _refuse(error, 1, f"{type(error).__name__}: ")


@contextmanager
def usage() -> Iterator[None]:
    """A bad command-line option value is a usage error: one line naming the option, exit 2, nothing written."""
    try:
        yield
    except ActorbatchError as error:
        _refuse(error, 2)


def _refuse(error: Exception, code: int, prefix: str = "") -> NoReturn:
    if settings.debug:
        raise error
    typer.echo(f"error: {prefix}{error}", err=True)
    raise typer.Exit(code) from None


def with_client(action: Callable[[api.Client], T], problems: bool = False) -> T:
    """Run `action` on a client; `problems`: then name each quarantined aggregate on stderr, one line each (for
    listings, which have just read the log: what they show of those aggregates stops at the bad event)."""
    with failures():
        client = api.connect(settings.db, settings.user)
        try:
            result = action(client)
            if problems:
                for problem in client.views.problems():
                    if problem.rested is None:
                        typer.echo(f"warning: {problem.line}", err=True)
            return result
        finally:
            if client.stale:
                typer.echo(f"warning: {client.stale}", err=True)
            client.close()


@app.command()
def init() -> None:
    """Create or upgrade the store (the only command that creates tables)."""
    with failures():
        url = api.init(settings.db)
    typer.echo(f"store ready: {url}")


# ---- jobs ----

@job_app.command("add")
def job_add(file: Annotated[str, typer.Argument(help="TOML job file.")],
            replace: Annotated[bool, typer.Option("--replace", help="Change existing jobs.")] = False) -> None:
    """Register the job(s) of a TOML file: all of them or, on any error, none."""
    with failures():
        jobs = api.load_job_file(file)
    actions = with_client(lambda c: c.add_jobs(jobs, replace))
    for job, action in zip(jobs, actions, strict=True):
        typer.echo(f"{action} job {job.name} ({len(job.tasks)} tasks)")


@job_app.command("validate")
def job_validate(file: Annotated[str, typer.Argument(help="TOML job file.")]) -> None:
    """Check a job file as `job add` would, without a store; writes nothing."""
    with failures():
        jobs = api.load_job_file(file)
    for job in jobs:
        typer.echo(f"valid job {job.name} ({len(job.tasks)} tasks)")


@job_app.command("list")
def job_list(as_json: Json = False) -> None:
    """Every registered job."""
    jobs = with_client(lambda c: c.jobs(), problems=True)
    if as_json:
        render.emit_json([{k: j[k] for k in ("name", "group", "scheduled", "next_fire", "tasks")} for j in jobs])
    else:
        render.jobs_table(jobs)


@job_app.command("show")
def job_show(name: str, as_json: Json = False) -> None:
    """One job: its settings and tasks."""
    job = with_client(lambda c: c.job(name), problems=True)
    if as_json:
        render.emit_json(job)
        return
    render.jobs_table([job])
    render.table(None, ["task", "body", "after", "retries", "ignore failure"],
                 [(t["name"], t["run"] or " ".join(t["command"]),
                   f" {t['when']} ".join(f"{p}={c}" for p, c in t["after"]) or "-", t["retries"],
                   "yes" if t["ignore_failure"] else "no") for t in job["definition"]["tasks"]], "no tasks")


@job_app.command("next")
def job_next(name: str, count: Annotated[int, typer.Option("--count", min=1, max=1000)] = 5,
             start: Annotated[str | None, typer.Option("--from", help="ISO 8601; default now.")] = None,
             as_json: Json = False) -> None:
    """The next fire times of a scheduled job, in UTC and local time: check a schedule before trusting it."""

    def fires(client: api.Client) -> list[dict[str, str]]:
        tz = _job_zone(client, name)
        with usage():
            after = api.parse_time(start, tz, "--from") if start is not None else None
        return client.next_fires(name, count, after)

    result = with_client(fires)
    if as_json:
        render.emit_json(result)
    else:
        render.table(None, ["utc", "local"], [(f["utc"], f["local"]) for f in result], "no more fire times")


@job_app.command("schedule")
def job_schedule(name: str) -> None:
    """Start the job's schedule: it fires from the next fire time on."""
    with_client(lambda c: c.schedule(name))
    typer.echo(f"scheduled job {name}")


@job_app.command("unschedule")
def job_unschedule(name: str) -> None:
    """Stop future runs (fire times while unscheduled are never missed: they do not exist)."""
    with_client(lambda c: c.unschedule(name))
    typer.echo(f"unscheduled job {name}")


@job_app.command("reschedule")
def job_reschedule(name: str) -> None:
    """Restart the job's schedule from now: `every` counts from here, earlier fire times are forgotten."""
    with_client(lambda c: c.schedule(name, restart=True))
    typer.echo(f"rescheduled job {name}")


@job_app.command("remove")
def job_remove(name: str) -> None:
    """Remove a job (its runs and their history stay)."""
    with_client(lambda c: c.remove_job(name))
    typer.echo(f"removed job {name}")


@job_app.command("run")
def job_run(name: str,
            at: Annotated[str | None, typer.Option("--at", help="Run once at this ISO 8601 time.")] = None,
            param: Annotated[list[str] | None, typer.Option("--param", help="K=V (V read as JSON if it parses).")]
            = None,
            as_json: Json = False) -> None:
    """Run a job now, or once later; prints the run id."""
    with usage():
        params = check_params(dict(_param(p) for p in param or []), "--param")

    def submit(client: api.Client) -> tuple[Any, str]:
        tz = _job_zone(client, name)
        with usage():
            when = api.parse_time(at, tz, "--at") if at is not None else None
        run_id = client.run_job(name, params, when)
        return run_id, "scheduled" if when is not None and when > client.clock.now() else "running"

    run_id, status = with_client(submit)
    if as_json:
        render.emit_json({"run_id": str(run_id), "status": status})
    else:
        typer.echo(str(run_id))


def _job_zone(client: api.Client, name: str) -> str:
    schedule = client.job(name)["definition"]["schedule"]
    return str(schedule.get("timezone", "UTC")) if schedule else "UTC"


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


# ---- runs ----

@run_app.command("list")
def run_list(job: Annotated[str | None, typer.Option("--job")] = None,
             status: Annotated[RunStatus | None, typer.Option("--status")] = None,
             since: Annotated[str | None, typer.Option("--since", help="ISO 8601 (UTC without an offset).")] = None,
             limit: Annotated[int, typer.Option("--limit", min=1, max=1_000_000)] = 50,
             as_json: Json = False) -> None:
    """The process monitor: one row per run, newest due first."""
    with usage():
        after = api.parse_time(since, field="--since") if since is not None else None
    runs = with_client(lambda c: c.runs(job, status and status.value, after, limit), problems=True)
    if as_json:
        render.emit_json(runs)
    else:
        render.runs_table(runs)


@run_app.command("show")
def run_show(run_id: str, as_json: Json = False) -> None:
    """A run's tasks: status, attempts, server, start, end, exit status."""
    run = with_client(lambda c: c.run(run_id), problems=True)
    if as_json:
        render.emit_json({k: v for k, v in run.items() if k not in ("user", "params", "duration_s")})
    else:
        render.tasks_table(run)


@run_app.command("logs")
def run_logs(run_id: str, task: Annotated[str | None, typer.Option("--task")] = None,
             follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing until the run ends.")]
             = False) -> None:
    """The run log: what each attempt printed or logged."""

    def show(client: api.Client) -> None:
        position = 0

        def print_new() -> int:
            last = position
            for last, name, attempt, line in client.logs(run_id, task, position):  # noqa: B007
                typer.echo(f"[{name}#{attempt}] {line}")
            return last

        while True:
            ended = client.run(run_id)["status"] in ("succeeded", "failed", "cancelled")
            position = print_new()  # read after the status check: lines shipped before the end are not missed
            if not follow or ended:
                return
            time.sleep(0.25)

    with_client(show)


@run_app.command("cancel")
def run_cancel(run_id: str) -> None:
    """Cancel a run: waiting tasks never start, running ones are asked to stop."""
    typer.echo(f"cancelled {with_client(lambda c: c.cancel(run_id))}")


@run_app.command("wait")
def run_wait(run_id: str, timeout: Annotated[float | None, typer.Option("--timeout", help="Seconds.")] = None,
             as_json: Json = False) -> None:
    """Block until the run is complete; exit 0 if it succeeded, 1 otherwise."""
    with usage():
        if timeout is not None:
            check_number(timeout, "--timeout", 0, MAX_DURATION_S, unit="s")
    run = with_client(lambda c: c.wait(run_id, timeout))
    if as_json:
        render.emit_json(run)
    else:
        typer.echo(f"run {run['id']} {run['status']}")
    raise typer.Exit(0 if run["status"] == "succeeded" else 1)


@app.command("explain")
def explain_run(run_id: str, task: Annotated[str | None, typer.Option("--task")] = None,
                as_json: Json = False) -> None:
    """Why each task of a run ran, waited, was skipped or retried."""
    reasons = with_client(lambda c: c.explain(run_id, task), problems=True)
    if as_json:
        render.emit_json(reasons)
        return
    for name, lines in reasons.items():
        render.console.print(f"[bold]{name}[/bold]")
        for line in lines:
            render.console.print(f"  {line}", markup=False)


@audit_app.command("log")
def audit_log(since: Annotated[str | None, typer.Option("--since")] = None,
              until: Annotated[str | None, typer.Option("--until")] = None,
              job: Annotated[str | None, typer.Option("--job")] = None,
              user: Annotated[str | None, typer.Option("--user")] = None,
              limit: Annotated[int, typer.Option("--limit", min=1, max=1_000_000)] = 1000,
              as_json: Json = False) -> None:
    """Who did what: every job change, run started by hand and cancellation, oldest first."""
    with usage():
        since_at = api.parse_time(since, field="--since") if since is not None else None
        until_at = api.parse_time(until, field="--until") if until is not None else None
    entries = with_client(lambda c: c.audit(since_at, until_at, job, user, limit), problems=True)
    if as_json:
        render.emit_json(entries)
    else:
        render.table(None, ["at", "user", "action", "subject"],
                     [(render.short_time(e["at"]), e["user"], e["action"], e["subject"]) for e in entries],
                     "no entries")


@audit_app.command("verify")
def audit_verify(as_json: Json = False) -> None:
    """Check the log's integrity against the digests recorded as it was read; exit 1 if it was changed."""
    result = with_client(lambda c: c.verify())
    if as_json:
        render.emit_json(result)
    else:
        render.verdict(result)
    if not result["ok"]:
        raise typer.Exit(1)


# ---- servers ----

@server_app.command("start")
def server_start(
    name: Annotated[str | None, typer.Option("--name", help="Default: host name and process id.")] = None,
    groups: Annotated[str, typer.Option("--groups", help="Comma-separated batch groups.")] = "default",
    threads: Annotated[int, typer.Option("--threads", help=f"1 to {MAX_THREADS}.")] = 4,
    window: Annotated[list[str] | None, typer.Option("--window", help="e.g. 'mon-fri 08:00-18:00=2'.")] = None,
    timezone: Annotated[str, typer.Option("--timezone", help="Zone of the windows.")] = "UTC",
    lease_timeout: Annotated[float, typer.Option("--lease-timeout", help="Seconds.")] = 30.0,
    projector: Annotated[str, typer.Option("--projector", help="Keep the read models in a child 'process' "
                                                               "(another core), a 'thread', or 'off'.")] = "process",
) -> None:
    """Run a batch server in the foreground; SIGTERM or SIGINT drains it and exits 0."""
    import logging
    import os
    import socket

    logging.basicConfig(level=logging.DEBUG if settings.debug else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    with usage():
        config = ServerConfig(name=name or f"{socket.gethostname()}-{os.getpid()}",
                              groups=tuple(g.strip() for g in groups.split(",") if g.strip()), threads=threads,
                              windows=tuple(parse_window(w) for w in window or []), timezone=timezone,
                              lease_timeout_s=lease_timeout, projector=projector)
    stop = {"requested": False}

    def request_stop(signum: int, frame: Any) -> None:
        stop["requested"] = True

    # Before starting: tasks may begin while start() returns, and a SIGTERM then must drain, not kill.
    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    with failures():
        server = BatchServer(settings.db or api.default_url(), config).start()
    typer.echo(f"server {config.name} started: groups {','.join(config.groups)}, {threads} threads", err=True)
    while not stop["requested"] and server.healthy() and not server.drain_requested():
        server.tend()
        time.sleep(0.1)
    if not server.healthy():  # an actor died: stop the rest, say so, let a process manager restart us
        with contextlib.suppress(ActorbatchError):
            server.stop(drain=False, reason="failed")
        why = server.failure or "see the log above"
        typer.echo(f"error: server {config.name} stopped: {why}", err=True)
        raise typer.Exit(1)
    typer.echo(f"server {config.name} draining", err=True)
    with failures():
        server.stop(drain=True, reason="signal")
    typer.echo(f"server {config.name} stopped", err=True)


@server_app.command("drain")
def server_drain(name: str) -> None:
    """Ask a running server to finish its running tasks, take no new ones, and exit 0."""
    with_client(lambda c: c.drain(name))
    typer.echo(f"asked server {name} to drain")


@server_app.command("list")
def server_list(as_json: Json = False) -> None:
    """Every server that ever started, and whether it is alive."""
    servers = with_client(lambda c: c.servers(), problems=True)
    if as_json:
        render.emit_json(servers)
    else:
        render.servers_table(servers)


# ---- screens ----

@app.command()
def status(as_json: Json = False,
           watch: Annotated[bool, typer.Option("--watch", help="Refresh every 2 s until interrupted.")] = False
           ) -> None:
    """The status screen: jobs, active runs, running tasks, servers."""
    while True:
        screen = with_client(lambda c: c.status())
        if as_json:
            render.emit_json(screen)
        else:
            if watch:
                render.console.clear()
            render.status_screen(screen)
        if not watch:
            return
        time.sleep(2)


@projections_app.command("rebuild")
def projections_rebuild() -> None:
    """Drop every read model and rebuild it from the log."""
    from rich.console import Console
    from rich.progress import Progress

    def rebuild(client: api.Client) -> int:
        with Progress(transient=True, console=Console(stderr=True)) as progress:
            bar = progress.add_task("rebuilding", total=max(client.store.head(), 1))
            started = time.perf_counter()
            count = client.rebuild_projections(lambda done, total: progress.update(bar, completed=done,
                                                                                   total=total))
        elapsed = time.perf_counter() - started
        typer.echo(f"rebuilt from {count} events in {elapsed:.2f}s ({count / max(elapsed, 1e-9):,.0f} events/s)")
        return count

    with_client(rebuild, problems=True)


@projections_app.command("follow")
def projections_follow(interval: Annotated[float, typer.Option("--interval", help="Seconds between catch-ups.")]
                       = 0.25) -> None:
    """Keep the read models up to date until SIGTERM or SIGINT (each `server start` runs one of these)."""
    with usage():
        check_number(interval, "--interval", 0.001, 3600, unit="s")
    stop = {"requested": False}

    def request_stop(signum: int, frame: Any) -> None:
        stop["requested"] = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    import logging

    logging.getLogger("actorbatch.store").setLevel(logging.ERROR)  # the server that started us reports outages

    def follow(client: api.Client) -> None:
        while not stop["requested"]:
            try:
                caught_up = not client.views.catch_up()
            except (StoreUnavailable, StoreFailed):  # ride it out: the server that started us judges the store
                client.views.forget()
                caught_up = True
            if caught_up:
                time.sleep(interval)

    with failures():
        while not stop["requested"]:
            try:
                client = api.connect(settings.db, settings.user)
            except StoreUnavailable:  # not there yet (a database restarting): wait for it rather than die
                time.sleep(1.0)
                continue
            try:
                follow(client)
            finally:
                client.close()


@app.command()
def demo() -> None:
    """Register the Dynamics AX 2009 walkthrough job and a report job, run them, show the screens."""
    from actorbatch.cli.demo import run_demo

    with failures():
        run_demo(settings.db or api.default_url(), settings.user)


def entry() -> None:
    try:
        app()
    except SystemExit as exit_:
        sys.exit(exit_.code)
