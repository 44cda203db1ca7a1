"""What every command shares: the global options, turning errors into exit codes, and a client to work with.

Commands import the API and everything below it inside their functions, so `actorbatch --help` loads typer only.
"""

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer

from actorbatch.errors import ActorbatchError, PermissionDenied

if TYPE_CHECKING:
    from actorbatch.api import Client

T = TypeVar("T")
# The cyclic garbage collector's thresholds in a process that folds or runs a great deal (a server, the projector, a
# rebuild). Every event and task allocates short-lived containers while the process holds many long-lived ones (a
# server's book of active runs): at Python's default (700, 10, 10) the collector rescans those every few tasks, a
# tenth of a busy server's CPU. Garbage in cycles lives a little longer instead (see docs/operations.md).
GC_THRESHOLDS = (50_000, 20, 20)
Json = Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")]
AsOf = Annotated[str | None, typer.Option("--as-of", metavar="TIME", help="As it was at TIME (ISO 8601, UTC "
                                          "without an offset), rebuilt from the log.")]
RunId = Annotated[str, typer.Argument(metavar="RUN_ID", show_default=False,
                                      help="A run id, or a unique prefix of one (dashes optional).")]
JobName = Annotated[str, typer.Argument(metavar="NAME", show_default=False, help="The job's name.")]


class Settings:
    db: str | None = None
    user: str | None = None
    debug: bool = False


settings = Settings()


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
    label = "" if isinstance(error, PermissionDenied) else "error: "  # the contract's line, as it stands
    typer.echo(f"{label}{prefix}{error}", err=True)
    raise typer.Exit(code) from None


def with_client(action: Callable[["Client"], T], problems: bool = False) -> T:
    """Run `action` on a client; `problems`: then name each quarantined aggregate on stderr, one line each (for
    listings, which have just read the log: what they show of those aggregates stops at the bad event)."""
    with failures():
        from actorbatch import api

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


def collect_seldom() -> None:
    """Raise the garbage collector's thresholds (GC_THRESHOLDS) and leave what this process built so far (its
    modules, a server's seeded book) out of every later collection."""
    gc.set_threshold(*GC_THRESHOLDS)
    gc.freeze()
