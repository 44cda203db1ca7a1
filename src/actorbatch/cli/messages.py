"""`actorbatch messages`: the acting user's system messages, which completed runs leave them."""

from typing import Annotated

import typer

from actorbatch.cli import emit
from actorbatch.cli.common import Json, with_client


def messages(all_messages: Annotated[bool, typer.Option("--all", help="Also the messages read before.")] = False,
             as_json: Json = False) -> None:
    """Your system messages, unread first; reading them marks them read."""
    from actorbatch.cli import render

    shown = with_client(lambda c: c.messages(all_messages))
    if as_json:
        emit.emit_json(shown)
    else:
        render.messages_table(shown)
