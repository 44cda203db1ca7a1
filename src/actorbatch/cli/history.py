"""`actorbatch history ...`: apply the retention policy, archiving finished runs past their age."""

from typing import TYPE_CHECKING, Annotated, Any

import typer

from actorbatch.cli import emit
from actorbatch.cli.common import Json, usage, with_client
from actorbatch.cli.shape import Cli

if TYPE_CHECKING:
    from actorbatch.api import Client

history_app = Cli(help="Run history: retention and the archive.", no_args_is_help=True)


@history_app.command("prune")
def history_prune(dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would move; move nothing.")]
                  = False,
                  upkeep: Annotated[bool, typer.Option("--upkeep", help="Then VACUUM/ANALYZE (SQLite) or VACUUM "
                                                       "ANALYZE and REINDEX (PostgreSQL) the store.")] = False,
                  as_json: Json = False) -> None:
    """Archive finished runs older than ACTORBATCH_RETENTION (default succeeded=30d,failed=180d,cancelled=30d)
    and superseded heartbeats; `audit verify` still proves them."""
    from actorbatch import maintenance

    with usage():
        keep = maintenance.policy()

    def prune(client: "Client") -> dict[str, Any]:
        outcome = maintenance.prune(client, dry_run, keep)
        if upkeep and not dry_run:
            outcome["upkeep"] = maintenance.upkeep(client)
        return outcome

    outcome = with_client(prune)
    if as_json:

        emit.emit_json(outcome)
        return
    verb = "would archive" if dry_run else "archived"
    runs = ", ".join(f"{n} {status}" for status, n in outcome["runs"].items())
    typer.echo(f"{verb} runs: {runs} ({outcome['events']} events), {outcome['heartbeats']} heartbeats; "
               f"live log {outcome['live_events']} events, archive {outcome['archived_events']}")
    for step in outcome.get("upkeep", []):
        typer.echo(f"{step['step']}: {step['outcome']}{' ' + str(step.get('error', '')) if 'error' in step else ''}")
