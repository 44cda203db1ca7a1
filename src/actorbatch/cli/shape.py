"""How `--help` reads: flags without a type (`--json`, not `--json <bool>`), required arguments named plainly in
the usage line (`RUN_ID`, not `{RUN_ID}`), whichever typer renders it (0.29 and later write both the other way;
tests/test_cli_habits.py holds the shape). Every command and group of the CLI is made with these classes."""

import re
from collections.abc import Callable
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup, TyperOption
from typer.models import CommandFunctionType

_REQUIRED = re.compile(r"^\{(.+)\}")


def _plain(command: Any, ctx: Any) -> None:
    for param in command.get_params(ctx):
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""  # a flag takes no value: no type to show


class Command(TyperCommand):
    def format_help(self, ctx: Any, formatter: Any) -> None:
        _plain(self, ctx)
        super().format_help(ctx, formatter)

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return [_REQUIRED.sub(r"\1", piece).replace("......", "...") for piece in super().collect_usage_pieces(ctx)]


class Group(TyperGroup):
    def format_help(self, ctx: Any, formatter: Any) -> None:
        _plain(self, ctx)
        super().format_help(ctx, formatter)


class Cli(typer.Typer):
    """A typer application whose commands and groups read as above, in plain text: rich's help renderer alone
    would double the time `--help` takes (it loads rich and a markdown parser)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(cls=Group, rich_markup_mode=None, **options)

    def command(self, name: str | None = None, **options: Any) -> Callable[[CommandFunctionType],
                                                                           CommandFunctionType]:
        return super().command(name, cls=Command, **options)
