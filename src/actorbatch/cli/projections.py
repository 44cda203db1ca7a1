"""`actorbatch projections ...`: rebuild the read models from the log, or keep them up to date."""

import signal
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from actorbatch.cli.common import collect_seldom, failures, settings, usage, with_client
from actorbatch.cli.shape import Cli
from actorbatch.domain.limits import check_number
from actorbatch.errors import StoreFailed, StoreUnavailable

if TYPE_CHECKING:
    from actorbatch.api import Client

projections_app = Cli(help="The read models behind every listing.", no_args_is_help=True)


@projections_app.command("rebuild")
def projections_rebuild() -> None:
    """Drop every read model and rebuild it from the log."""
    from rich.console import Console
    from rich.progress import Progress

    def rebuild(client: "Client") -> int:
        collect_seldom()
        with Progress(transient=True, console=Console(stderr=True)) as progress:
            bar = progress.add_task("rebuilding", total=max(client.store.head(), 1))
            started = time.perf_counter()
            count = client.rebuild_projections(lambda done, total: progress.update(
                bar, completed=done, total=total,  # every 5,000 events; then the new tables are copied into place
                description="rebuilding" if done < total else "copying into place"))
        elapsed = time.perf_counter() - started
        typer.echo(f"rebuilt from {count} events in {elapsed:.2f}s ({count / max(elapsed, 1e-9):,.0f} events/s)")
        return count

    with_client(rebuild, problems=True)


SAFETY_S = 5.0  # PostgreSQL, while commit notifications are heard: catch up this often anyway


@projections_app.command("follow")
def projections_follow(interval: Annotated[float, typer.Option(
        "--interval", help="Seconds between catch-ups, at least (PostgreSQL: when a commit is notified; "
                           "SQLite: when the file changed).")] = 0.25) -> None:
    """Keep the read models up to date until SIGTERM or SIGINT (each `server start` runs one of these)."""
    with usage():
        check_number(interval, "--interval", 0.001, 3600, unit="s")
    import logging

    from actorbatch import api
    from actorbatch.store.notify import Bell, LogListener

    stop = {"requested": False}
    bell = Bell()  # commit notifications and the stop signal ring it

    def request_stop(signum: int, frame: Any) -> None:
        stop["requested"] = True
        bell.ring()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    logging.getLogger("actorbatch.store").setLevel(logging.ERROR)  # the server that started us reports outages

    def follow(client: "Client") -> None:
        """Catch up; then wait for a commit (PostgreSQL: its notification, or SAFETY_S; SQLite: a look at the
        file's `data_version` every `interval`, which reads no rows), never less than `interval` between two."""
        listener = None
        if client.store.url.kind == "postgresql":
            listener = LogListener(client.store.url, bell.ring, lambda on: bell.ring()).start()
        clean = False  # the last catch-up ended at the head of the log
        collect_seldom()
        try:
            while not stop["requested"]:
                started = time.monotonic()
                bell.wait(0)  # what rang before this catch-up is covered by it
                if client.store.unchanged() and clean:  # SQLite: nothing committed since the last look
                    caught_up = True
                else:
                    clean = False
                    try:
                        caught_up = clean = not client.views.catch_up()
                    except (StoreUnavailable, StoreFailed):  # ride it out: the server that started us judges
                        client.views.forget()
                        caught_up = True
                if caught_up:
                    if listener is not None and listener.listening:
                        bell.wait(SAFETY_S)
                    rest = interval - (time.monotonic() - started)
                    if rest > 0 and not stop["requested"]:
                        time.sleep(rest)
        finally:
            if listener is not None:
                listener.stop()

    with failures():
        while not stop["requested"]:
            try:
                client = api.connect(settings.db, settings.user)
            except StoreUnavailable:  # not there yet (a database restarting): wait for it rather than die
                bell.wait(1.0)
                continue
            try:
                follow(client)
            finally:
                client.close()
