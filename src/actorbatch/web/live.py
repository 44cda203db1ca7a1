"""Live updates: `GET /api/events` streams the log position (server-sent events) each time the read models move,
and pages fetch their live part again when they hear it."""

from collections.abc import AsyncIterator

from sse_starlette.sse import EventSourceResponse
from starlette.requests import Request
from starlette.routing import Route

from actorbatch.web.auth import reader

QUIET_S = 15.0  # with nothing new, say the position again this often: proxies close silent streams


async def events(request: Request) -> EventSourceResponse:
    """
    ---
    summary: "The log position, as server-sent events (`event: position`), each time it moves"
    responses: {200: {description: "text/event-stream"}}
    """
    reader(request)
    console = request.app.state.console

    async def stream() -> AsyncIterator[dict[str, str]]:
        seen = -1
        while True:
            seen = await console.moved_past(seen, QUIET_S)
            yield {"event": "position", "data": str(seen)}

    return EventSourceResponse(stream(), ping=QUIET_S)


ROUTES = [Route("/api/events", events)]
