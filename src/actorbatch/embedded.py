"""`actorbatch.Server`: a batch server embedded in a client's process.

Apart from the API so that a client that only submits and reads never loads the server's actors.
"""

import os
from typing import Any

from actorbatch.actors.senders import notify_options
from actorbatch.actors.server import BatchServer, ServerConfig
from actorbatch.api import Client


class Server(BatchServer):
    """A full batch server in this process, on a client's store and clock: `with actorbatch.Server(client): ...`.
    `options` are ServerConfig's (`groups`, `lease_timeout_s`, `timezone`, `windows`, `projector`, ...)."""

    def __init__(self, client: Client, name: str = "embedded", threads: int = 4, **options: Any) -> None:
        options = {**notify_options(os.environ), **options}  # e-mail as `server start` would send it
        super().__init__(client.url, ServerConfig(name=name, threads=threads, **options), clock=client.clock)
