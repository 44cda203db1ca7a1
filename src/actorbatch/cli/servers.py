"""`actorbatch server ...`: run a batch server in the foreground, drain one, list them."""

import contextlib
import signal
import sys
from typing import Annotated, Any

import typer

from actorbatch.cli import emit
from actorbatch.cli.common import Json, collect_seldom, failures, settings, usage, with_client
from actorbatch.cli.shape import Cli
from actorbatch.domain.limits import MAX_THREADS
from actorbatch.errors import ActorbatchError

server_app = Cli(help="Batch servers.", no_args_is_help=True)
SUPERVISE_S = 0.5  # how often `server start` looks at its server's health and for a drain request (a signal: at once)


@server_app.command("start")
def server_start(
    name: Annotated[str | None, typer.Option("--name", help="Default: host name and process id.")] = None,
    groups: Annotated[str, typer.Option("--groups", help="Comma-separated batch groups.")] = "default",
    threads: Annotated[int, typer.Option("--threads", help=f"1 to {MAX_THREADS}.")] = 4,
    window: Annotated[list[str] | None, typer.Option("--window", help="e.g. 'mon-fri 08:00-18:00=2'.")] = None,
    timezone: Annotated[str, typer.Option("--timezone", help="Zone of the windows.")] = "UTC",
    lease_timeout: Annotated[float, typer.Option("--lease-timeout", help="Seconds.")] = 30.0,
    load_bias: Annotated[float, typer.Option(
        "--load-bias", help="0: every free thread competes equally; larger: a server busier than a live peer "
                            "of the group yields more new leases to it (0 to 100).")] = 1.0,
    projector: Annotated[str, typer.Option("--projector", help="Keep the read models in a child 'process' "
                                                               "(another core), a 'thread', or 'off'.")] = "process",
    metrics_port: Annotated[int | None, typer.Option(
        "--metrics-port", help="Serve Prometheus metrics at http://HOST:P/metrics (0: any free port).")] = None,
    metrics_host: Annotated[str, typer.Option("--metrics-host", help="Address the metrics listen on.")]
    = "127.0.0.1",
) -> None:
    """Run a batch server in the foreground; SIGTERM or SIGINT drains it and exits 0."""
    collect_seldom()  # already for the imports, which the default thresholds interrupt some thirty times
    import logging
    import os
    import socket

    from actorbatch.actors.senders import notify_options
    from actorbatch.actors.server import BatchServer, ServerConfig
    from actorbatch.domain.servers import parse_window
    from actorbatch.store.urls import default_url

    logging.basicConfig(level=logging.DEBUG if settings.debug else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    with usage():
        config = ServerConfig(name=name or f"{socket.gethostname()}-{os.getpid()}",
                              groups=tuple(g.strip() for g in groups.split(",") if g.strip()), threads=threads,
                              windows=tuple(parse_window(w) for w in window or []), timezone=timezone,
                              lease_timeout_s=lease_timeout, load_bias=load_bias, projector=projector,
                              metrics_port=metrics_port, metrics_host=metrics_host, **notify_options(os.environ))
    from actorbatch.store.notify import Bell

    stop = {"requested": False}
    bell = Bell()  # a signal wakes the supervising loop below at once

    def request_stop(signum: int, frame: Any) -> None:
        stop["requested"] = True
        bell.ring()

    # Before starting: tasks may begin while start() returns, and a SIGTERM then must drain, not kill.
    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    with failures():
        server = BatchServer(settings.db or default_url(), config).start()
    collect_seldom()  # the modules and the seeded book
    mail = f"; e-mail alerts through {config.smtp.shown}" if config.smtp else ""
    typer.echo(f"server {config.name} started: groups {','.join(config.groups)}, {threads} threads{mail}", err=True)
    if server.metrics is not None:
        typer.echo(f"metrics at http://{metrics_host}:{server.metrics.port}/metrics", err=True)
    while not stop["requested"] and server.check() is None:
        server.tend()
        bell.wait(SUPERVISE_S)
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
def server_drain(name: Annotated[str, typer.Argument(metavar="NAME", show_default=False,
                                                     help="The server's name (see `server list`).")]) -> None:
    """Ask a running server to finish its running tasks, take no new ones, and exit 0."""
    with_client(lambda c: c.drain(name))
    typer.echo(f"asked server {name} to drain")


@server_app.command("list")
def server_list(as_json: Json = False) -> None:
    """Every server that ever started, and whether it is alive."""
    from actorbatch.cli import render

    servers = with_client(lambda c: c.servers(), problems=True)
    if as_json:
        emit.emit_json(servers)
    else:
        render.servers_table(servers)
