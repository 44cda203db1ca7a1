"""The web console's application: routes, sessions, CSRF protection, and the loop that follows the log."""

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.schemas import SchemaGenerator
from starlette.staticfiles import StaticFiles
from starlette_csrf.middleware import CSRFMiddleware

from actorbatch.errors import ActorbatchError
from actorbatch.web import json_api, live, pages
from actorbatch.web.console import Console
from actorbatch.web.responses import Json, refused

HERE = Path(__file__).parent
SESSION_COOKIE = "actorbatch_session"
SESSION_S = 12 * 3600  # a login lasts a working day
schemas = SchemaGenerator({"openapi": "3.0.0", "info": {"title": "actorbatch web console", "version": "1"}})


def openapi(request: Request) -> Response:
    return Json(schemas.get_schema(routes=request.app.routes))


def create_app(console: Console, secret: str | None = None, *, secure_cookies: bool = False) -> Starlette:
    """The console's ASGI application. `secret` signs sessions and CSRF tokens (a random one: logins end when the
    console restarts); `secure_cookies` for a console behind HTTPS."""
    key = secret or secrets.token_urlsafe(32)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(console.follow())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    routes = [*json_api.ROUTES, *live.ROUTES, *pages.ROUTES,
              Route("/api/openapi.json", openapi, include_in_schema=False),
              Mount("/static", StaticFiles(directory=HERE / "static"), name="static")]
    middleware = [
        Middleware(SessionMiddleware, secret_key=key, session_cookie=SESSION_COOKIE, max_age=SESSION_S,
                   same_site="strict", https_only=secure_cookies),
        # Double-submit cookie: a form post carrying the session cookie must also send the token in a header.
        # Bearer clients send no session cookie, so they need none.
        Middleware(CSRFMiddleware, secret=key, sensitive_cookies={SESSION_COOKIE}, cookie_secure=secure_cookies,
                   cookie_samesite="strict"),
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan,
                    exception_handlers={ActorbatchError: refused, 401: refused, 403: refused, 404: refused,
                                        400: refused, 409: refused})
    app.state.console = console
    return app
