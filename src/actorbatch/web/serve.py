"""Serving the console: bind the socket first (so `--port 0` can say which port it got), then run uvicorn."""

import contextlib
import os
import signal
import socket
import sys
from collections.abc import Iterator

import uvicorn

from actorbatch.api import Client
from actorbatch.web.app import create_app
from actorbatch.web.console import Console

SECRET_ENV = "ACTORBATCH_WEB_SECRET"  # noqa: S105 - the name of a variable; keeps logins across restarts, and shared by consoles behind one proxy


class _Server(uvicorn.Server):
    """uvicorn, but SIGTERM and SIGINT end it with exit 0 (as they do a batch server), not by the signal again."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def serve(client: Client, host: str, port: int, *, public_read: bool = False) -> None:
    """Serve until SIGINT or SIGTERM."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound = sock.getsockname()[1]
    app = create_app(Console(client, public_read=public_read), os.environ.get(SECRET_ENV) or None,
                     secure_cookies=os.environ.get("ACTORBATCH_WEB_SECURE_COOKIES") == "1")
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    print(f"web console at http://{shown}:{bound}/", file=sys.stderr, flush=True)
    config = uvicorn.Config(app, log_level="warning", proxy_headers=True, timeout_graceful_shutdown=2)
    _Server(config).run(sockets=[sock])
