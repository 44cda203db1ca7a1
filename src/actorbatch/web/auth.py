"""Who is asking: a token in `Authorization: Bearer`, or a login session made with one; and whether they may read.

Writes are checked where the CLI's are (the commands' privilege guard); here only whether someone is logged in.
"""

from starlette.exceptions import HTTPException
from starlette.requests import Request

from actorbatch.api import Client

LOGIN_FIRST = "log in first: with a token from `actorbatch user token USER`"


def _unauthorised(text: str = LOGIN_FIRST) -> HTTPException:
    return HTTPException(401, text, headers={"WWW-Authenticate": "Bearer"})


def who(request: Request) -> str | None:
    """The logged-in user: from a bearer token (refused with 401 if it is not valid) or the session."""
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        raise _unauthorised("token not valid (a newer token revokes the older one)")
    user = request.session.get("user")
    return user if isinstance(user, str) else None


def store_is_open(request: Request) -> bool:
    """Whether no one holds `admin` yet: then everyone counts as admin, and reading needs no login."""
    return True


def reader(request: Request) -> None:
    """Reading needs a login, but while the store is open or the console was started with --public-read."""
    if request.app.state.console.public_read or store_is_open(request) or who(request) is not None:
        return
    raise _unauthorised()


def acting(request: Request) -> Client:
    """A client acting as the logged-in user; 401 without a login."""
    user = who(request)
    if user is None:
        raise _unauthorised()
    client: Client = request.app.state.console.client.as_user(user)
    return client
