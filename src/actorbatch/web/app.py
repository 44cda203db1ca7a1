"""The web console's application: routes, sessions, CSRF protection, and the loop that follows the log."""

import asyncio
import contextlib
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.schemas import SchemaGenerator
from starlette.staticfiles import StaticFiles
from starlette_csrf.middleware import CSRFMiddleware

from actorbatch.errors import ActorbatchError
from actorbatch.web import actions, json_api, live, pages
from actorbatch.web.console import Console
from actorbatch.web.responses import Json, refused

HERE = Path(__file__).parent
SESSION_COOKIE = "actorbatch_session"
SESSION_S = 12 * 3600  # a login lasts a working day
schemas = SchemaGenerator({"openapi": "3.0.0", "info": {"title": "actorbatch web console", "version": "1"}})


def openapi(request: Request) -> Response:
    return Json(schemas.get_schema(routes=request.app.routes))


async def errors(request: Request, error: Exception) -> Response:
    """A page asked without a login gets the login form; every other refusal is one line (see `refused`)."""
    if isinstance(error, HTTPException) and error.status_code == 401 and not request.url.path.startswith("/api/"):
        return pages.login_first(request, str(error.detail))
    return await refused(request, error)


def create_app(console: Console, secret: str | None = None, *, secure_cookies: bool = False) -> Starlette:
    """The console's ASGI application. `secret` signs sessions and CSRF tokens (a random one: logins end when the
    console restarts); `secure_cookies` for a console behind HTTPS."""
    key = secret or secrets.token_urlsafe(32)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await console.start()  # the first answer already shows the log as it is now
        task = asyncio.create_task(console.follow())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            console.close()

    routes = [*json_api.ROUTES, *actions.ROUTES, *live.ROUTES, *pages.ROUTES,
              Route("/api/openapi.json", openapi, include_in_schema=False),
              Mount("/static", StaticFiles(directory=HERE / "static"), name="static")]
    middleware = [
        Middleware(SessionMiddleware, secret_key=key, session_cookie=SESSION_COOKIE, max_age=SESSION_S,
                   same_site="strict", https_only=secure_cookies),
        # Double-submit cookie: a form post carrying the session cookie must also send the token in a header.
        # Bearer clients send no session cookie, so they need none.
        # Logging in always needs the token, so another site cannot log a browser in as someone else.
        Middleware(CSRFMiddleware, secret=key, sensitive_cookies={SESSION_COOKIE}, cookie_secure=secure_cookies,
                   cookie_samesite="strict", required_urls=[re.compile(r"^/api/login$")]),
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan,
                    exception_handlers={ActorbatchError: errors, HTTPException: errors})
    app.state.console = console
    return app
