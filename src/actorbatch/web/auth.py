"""Who is asking: a token in `Authorization: Bearer`, or a login session started with one; and whether they may read.

Writes are checked where the CLI's are (the commands' privilege guard); here only who is logged in. A session
remembers which token started it (by the token's salt, not the token): a new token for the user ends it.
"""

from starlette.exceptions import HTTPException
from starlette.requests import Request

from actorbatch.api import Client

LOGIN_FIRST = "log in first: with a token from `actorbatch user token USER`"
NOT_VALID = "token not valid (a newer token for the same user revokes the older one)"


def _unauthorised(text: str = LOGIN_FIRST) -> HTTPException:
    return HTTPException(401, text, headers={"WWW-Authenticate": "Bearer"})


def _client(request: Request) -> Client:
    client: Client = request.app.state.console.client
    return client


def token_user(request: Request, token: str) -> str:
    """The user whose current token `token` is; 401 if it is no one's."""
    user = _client(request).token_user(token)
    if user is None:
        raise _unauthorised(NOT_VALID)
    return user


def start_session(request: Request, user: str) -> None:
    request.session.clear()
    request.session.update(user=user, token=_client(request).commands.guard.record(user).salt)


def who(request: Request) -> str | None:
    """The logged-in user: by a bearer token (401 if it is not valid) or by a session still on its token."""
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return token_user(request, header[7:].strip())
    user, token = request.session.get("user"), request.session.get("token")
    if not isinstance(user, str):
        return None
    if token is None or _client(request).commands.guard.record(user).salt != token:
        request.session.clear()  # the user has a new token since: this session ended with the old one
        return None
    return user


def reader(request: Request) -> None:
    """Reading needs a login, but while the store is open (no admin yet) or with --public-read."""
    if request.app.state.console.public_read or _client(request).commands.guard.is_open():
        return
    if who(request) is None:
        raise _unauthorised()


def acting(request: Request) -> Client:
    """A client acting as the logged-in user; 401 without a login."""
    user = who(request)
    if user is None:
        raise _unauthorised()
    return _client(request).as_user(user)
