"""The `actorbatch` command: parse, call the API, render. Exit 0 ok, 1 operation failed, 2 usage error.

This module holds the root: global options, the commands of no noun, and the nouns' sub-commands (`jobs`, `runs`,
`servers`, `users`, `projections`, `audit`), in the order `--help` lists them.
"""

import sys
import time
from typing import Annotated, Any

import typer

from actorbatch.cli import emit
from actorbatch.cli.audit import audit_app
from actorbatch.cli.backup import backup, restore
from actorbatch.cli.common import AsOf, failures, settings, usage, with_client
from actorbatch.cli.history import history_app
from actorbatch.cli.jobs import job_app
from actorbatch.cli.messages import messages
from actorbatch.cli.projections import projections_app
from actorbatch.cli.runs import explain_run, run_app
from actorbatch.cli.servers import server_app
from actorbatch.cli.shape import Cli
from actorbatch.cli.users import user_app
from actorbatch.cli.web import web
from actorbatch.domain.limits import check_user

app = Cli(help="Event-sourced batch jobs: run now, later or on a schedule, on one or many servers.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(job_app, name="job")
app.add_typer(run_app, name="run")
app.add_typer(server_app, name="server")
app.add_typer(user_app, name="user")
app.add_typer(projections_app, name="projections")
app.add_typer(audit_app, name="audit")
app.add_typer(history_app, name="history")


def _print_version(wanted: bool) -> None:
    if wanted:
        from importlib.metadata import version

        typer.echo(f"actorbatch {version('actorbatch')}")
        raise typer.Exit


@app.callback()
def main(
    db: Annotated[str | None, typer.Option("--db", envvar="ACTORBATCH_DB", metavar="URL",
                                           help="Store URL (default sqlite:///actorbatch.db).")] = None,
    user: Annotated[str | None, typer.Option("--user", envvar="ACTORBATCH_USER", metavar="NAME",
                                             help="Act as this user (default: the one the store vouches for: "
                                                  "the database role, or the OS user); needs admin.")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_print_version,
                                          help="Print the version and exit.")] = False,
) -> None:
    settings.db, settings.user, settings.debug = db, user, debug
    with usage():
        if user:  # an empty one means the OS user, as everywhere
            check_user(user, "--user")


@app.command()
def init(maintenance: Annotated[bool, typer.Option("--maintenance/--no-maintenance",
                                                   help="Add the daily job actorbatch-maintenance if missing.")]
         = True,
         role: Annotated[str | None, typer.Option(
             "--role", metavar="NAME", help="PostgreSQL: set up this role (created if missing) so that its members "
                                            "may append and read events but never change or delete them.")] = None,
         ) -> None:
    """Create or upgrade the store (the only command that creates tables)."""
    if role is not None:
        from actorbatch.domain.limits import check_name

        with usage():
            check_name(role, "--role")
    with failures():
        from actorbatch import api

        url = api.init(settings.db, role)
    typer.echo(f"store ready: {url}")
    if maintenance:
        from actorbatch.maintenance import JOB, install

        if with_client(install):
            typer.echo(f"scheduled job {JOB} (daily at 03:00 UTC; edit it like any job)")


app.command("explain")(explain_run)
app.command("backup")(backup)
app.command("restore")(restore)
app.command("web")(web)
app.command("messages")(messages)


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout; with --watch, one "
                                                               "document per line (JSON lines).")] = False,
           watch: Annotated[bool, typer.Option("--watch", help="Refresh every 2 s in place until interrupted.")]
           = False,
           rows: Annotated[int, typer.Option("--rows", metavar="N", min=1, max=10_000,
                                             help="At most N rows of each kind (the counts cover all).")] = 10,
           as_of: AsOf = None) -> None:
    """The status screen: counts of jobs, runs, tasks and servers, and the most relevant rows of each; with
    --as-of, as it was then."""
    from actorbatch import api

    with usage():
        moment = api.parse_time(as_of, field="--as-of") if as_of is not None else None

    def screen() -> dict[str, Any]:
        return with_client(lambda c: c.status(rows, moment))

    if as_json:
        if not watch:
            emit.emit_json(screen())
            return
        while True:
            emit.emit_json_line(screen())
            time.sleep(2)
    from actorbatch.cli import render  # rich: for the terminal only

    if not watch:
        render.console.print(render.status_screen(screen()))
        return
    from rich.live import Live

    with Live(render.status_screen(screen()), console=render.console, auto_refresh=False,
              redirect_stdout=False) as live:
        while True:
            time.sleep(2)
            live.update(render.status_screen(screen()), refresh=True)


@app.command()
def demo() -> None:
    """Register the Dynamics AX 2009 walkthrough job and a report job, run them, show the screens."""
    from actorbatch.cli.demo import run_demo
    from actorbatch.store.urls import default_url

    with failures():
        run_demo(settings.db or default_url(), settings.user)


def entry() -> None:
    try:
        app()
    except SystemExit as exit_:
        sys.exit(exit_.code)
