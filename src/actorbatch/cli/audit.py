"""`actorbatch audit ...`: who did what, and whether the log is as it was written."""

from typing import Annotated

import typer

from actorbatch.cli import emit
from actorbatch.cli.common import Json, usage, with_client
from actorbatch.cli.shape import Cli

audit_app = Cli(help="The audit trail.", no_args_is_help=True)


@audit_app.command("log")
def audit_log(since: Annotated[str | None, typer.Option("--since", metavar="TIME",
                                                       help="At or after this ISO 8601 time (UTC without an "
                                                            "offset).")] = None,
              until: Annotated[str | None, typer.Option("--until", metavar="TIME",
                                                        help="Before this ISO 8601 time.")] = None,
              job: Annotated[str | None, typer.Option("--job", metavar="NAME", help="Only this job's actions.")]
              = None,
              user: Annotated[str | None, typer.Option("--user", metavar="NAME", help="Only this user's actions.")]
              = None,
              limit: Annotated[int, typer.Option("--limit", metavar="N", min=1, max=1_000_000,
                                                 help="At most this many rows.")] = 1000,
              as_json: Json = False) -> None:
    """Who did what: every job change, run started by hand and cancellation, oldest first."""
    from actorbatch import api
    from actorbatch.cli import render

    with usage():
        since_at = api.parse_time(since, field="--since") if since is not None else None
        until_at = api.parse_time(until, field="--until") if until is not None else None
    entries = with_client(lambda c: c.audit(since_at, until_at, job, user, limit), problems=True)
    if as_json:
        emit.emit_json(entries)
    else:
        render.table(None, ["at", "user", "action", "subject"],
                     [(render.short_time(e["at"]), e["user"], e["action"], e["subject"]) for e in entries],
                     "no entries")


@audit_app.command("verify")
def audit_verify(head: Annotated[str | None, typer.Option(
                     "--head", help="A head digest `audit head` printed earlier (POSITION:DIGEST): also prove the "
                     "log still extends it.")] = None,
                 as_json: Json = False) -> None:
    """Check the whole log: its seals, each aggregate's versions, a kept head digest and (with
    ACTORBATCH_SIGNING_KEY) its signatures. Names the first changed, missing or moved event; exit 1 if any."""
    from actorbatch.cli import render
    from actorbatch.domain.limits import check_head

    with usage():
        if head is not None:
            check_head(head, "--head")
    result = with_client(lambda c: c.verify(head))
    if as_json:
        emit.emit_json(result)
    else:
        render.verdict(result)
    if not result["ok"]:
        raise typer.Exit(1)


@audit_app.command("head")
def audit_head(as_json: Json = False) -> None:
    """Verify the log, then print its head digest (POSITION:DIGEST) to keep somewhere the store's writers cannot
    reach; `audit verify --head` proves later that the log still extends it. Exit 1 if the log does not verify."""
    from actorbatch.cli import render

    result = with_client(lambda c: c.verify())
    if not result["ok"]:
        render.verdict(result)
        raise typer.Exit(1)
    if as_json:
        emit.emit_json({"head": result["head"], "events": result["events"]})
    else:
        print(result["head"])
