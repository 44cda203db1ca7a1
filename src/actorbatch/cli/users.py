"""`actorbatch user ...`: profiles, privileges and API tokens."""

from typing import Annotated

import typer

from actorbatch.cli import emit
from actorbatch.cli.common import Json, usage, with_client
from actorbatch.cli.shape import Cli

user_app = Cli(help="Users: privileges, profiles and API tokens.", no_args_is_help=True)
User = Annotated[str, typer.Argument(metavar="USER", help="The user's name (an OS user or database role).")]
Privileges = Annotated[list[str], typer.Argument(
    metavar="PRIVILEGE...", help="admin, job.manage, job.run, run.cancel, server.manage, or an application's.")]


def _checked(name: str, privileges: list[str] | None = None) -> None:
    """Values typed on the command line: a bad one is a usage error (exit 2), nothing written."""
    from actorbatch.domain.limits import check_privilege, check_user

    with usage():
        check_user(name, "USER")
        for privilege in privileges or []:
            check_privilege(privilege, "PRIVILEGE")


@user_app.command("grant")
def user_grant(name: User, privileges: Privileges) -> None:
    """Grant privileges (needs admin; anyone may while the store is open). The first `admin` grant closes the
    store: from then on every command is checked."""
    _checked(name, privileges)
    with_client(lambda c: c.grant(name, privileges))
    typer.echo(f"granted {', '.join(privileges)} to {name}")


@user_app.command("revoke")
def user_revoke(name: User, privileges: Privileges) -> None:
    """Revoke privileges (needs admin)."""
    _checked(name, privileges)
    with_client(lambda c: c.revoke(name, privileges))
    typer.echo(f"revoked {', '.join(privileges)} from {name}")


@user_app.command("list")
def user_list(as_json: Json = False) -> None:
    """Every user with a record: privileges and e-mail address."""
    from actorbatch.cli import render

    users = with_client(lambda c: c.users(), problems=True)
    if as_json:
        emit.emit_json(users)
    else:
        render.table(None, ["user", "privileges", "email"],
                     [(u["name"], ", ".join(u["privileges"]), u["email"] or "") for u in users], "no users")


@user_app.command("set")
def user_set(name: User,
             email: Annotated[str, typer.Option("--email", help="Where run-completion e-mail goes; '' clears it.")]
             ) -> None:
    """Set a user's profile: one's own, or anyone's as admin."""
    from actorbatch.domain.limits import check_email

    _checked(name)
    with usage():
        address = check_email(email, "--email") if email else None
    with_client(lambda c: c.set_email(name, address))
    typer.echo(f"{name}: email {address or '(none)'}")


@user_app.command("token")
def user_token(name: User) -> None:
    """Issue an API token for the web console (one's own, or anyone's as admin), revoking the previous one. It is
    printed once: only a salted hash of it is kept."""
    _checked(name)
    typer.echo(with_client(lambda c: c.issue_token(name)))
