"""Real endpoints on 127.0.0.1 for the alert tests: an SMTP server (aiosmtpd) and a webhook receiver (http.server)."""

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

REFUSED = "nobody@example.com"  # the mailbox the SMTP server refuses, for good


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Mailbox:
    """What the SMTP server received; it refuses REFUSED with 550 and accepts a login of `user` / `password`."""

    def __init__(self, user: str = "batch", password: str = "s3cret-pw") -> None:
        self.user, self.password = user, password
        self.messages: list[Message] = []
        self.logins: list[str] = []
        self._lock = threading.Lock()

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,  # noqa: N802
                          rcpt_options: list[str]) -> str:
        if address == REFUSED:
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        assert isinstance(envelope.content, bytes)
        with self._lock:
            self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    def authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                     auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == self.user and \
            auth_data.password.decode() == self.password
        if ok:
            self.logins.append(self.user)
        return AuthResult(success=ok)

    def to(self, address: str) -> list[Message]:
        with self._lock:
            return [m for m in self.messages if m["To"] == address]


@contextmanager
def smtp_server(mailbox: Mailbox, port: int | None = None) -> Iterator[int]:
    """An SMTP server on 127.0.0.1 that offers a login (without TLS, on the loopback); yields its port."""
    port = port or free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, authenticator=mailbox.authenticate,
                            auth_require_tls=False)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


class Webhooks:
    """What the HTTP server was POSTed: (path, Idempotency-Key, JSON body)."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, str, Any]] = []
        self.lock = threading.Lock()


@contextmanager
def webhook_server(hooks: Webhooks) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 taking POSTs; yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with hooks.lock:
                hooks.posts.append((self.path, self.headers["Idempotency-Key"], body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
