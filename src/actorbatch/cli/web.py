"""`actorbatch web`: the web console."""

from typing import Annotated

import typer

from actorbatch.cli.common import usage, with_client
from actorbatch.domain.limits import check_count, check_text


def web(host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option("--port", help="Port to listen on (0: any free one).")] = 8080,
        public_read: Annotated[bool, typer.Option(
            "--public-read", help="Let anyone who reaches the console read the pages and the API without a "
                                  "login (actions still need one).")] = False) -> None:
    """Serve the web console (status screen, process monitor, jobs, servers, audit log) and its JSON API."""
    with usage():
        check_text(host, "--host", 255)
        check_count(port, "--port", 0, 65535)
    from actorbatch.web.serve import serve

    with_client(lambda client: serve(client, host, port, public_read=public_read))
