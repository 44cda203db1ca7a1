"""`actorbatch backup FILE` and `actorbatch restore FILE`: the whole store, log, archive and read models."""

from pathlib import Path
from typing import Annotated

import typer

from actorbatch.cli.common import failures, settings


def backup(file: Annotated[Path, typer.Argument(help="Where to write the backup (replaced if it exists).")]) -> None:
    """Copy the store, consistently, while servers run (SQLite: online backup; PostgreSQL: pg_dump)."""
    with failures():
        from actorbatch.store import backup as copies
        from actorbatch.store.urls import default_url, parse_url

        url = parse_url(settings.db or default_url())
        copies.backup(url, file)
    typer.echo(f"backed up {url} to {file}")


def restore(file: Annotated[Path, typer.Argument(help="A backup written by `actorbatch backup`.")]) -> None:
    """Replace the store with a backup (stop every server first), then rebuild the read models and verify."""
    with failures():
        from actorbatch.store import backup as copies
        from actorbatch.store.urls import default_url, parse_url

        url = parse_url(settings.db or default_url())
        copies.restore(url, file)
    typer.echo(f"restored {url} from {file}: now run `actorbatch projections rebuild` and `actorbatch audit verify`")
