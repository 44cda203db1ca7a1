"""Responses shared by the pages and the API: JSON written as the CLI writes it, errors as status codes."""

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from actorbatch.errors import ActorbatchError, InvalidJob, NotFound, PermissionDenied


class Json(JSONResponse):
    """JSON as `--json` prints it (values it cannot encode as their text), so the API and the CLI agree."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, default=str, ensure_ascii=False).encode("utf-8")


def status_of(error: Exception) -> int:
    """The HTTP status for an error of the application layer."""
    if isinstance(error, PermissionDenied):
        return 403
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, InvalidJob):
        return 400
    return 409  # refused as things stand: already cancelled, not scheduled, a write conflict


async def refused(request: Request, error: Exception) -> Response:
    """An error as one line: JSON `{"error"}` under /api/, plain text elsewhere."""
    if isinstance(error, HTTPException):
        code, text = error.status_code, str(error.detail)
    elif isinstance(error, ActorbatchError):
        code, text = status_of(error), str(error)
    else:
        raise error
    if request.url.path.startswith("/api/"):
        return Json({"error": text}, status_code=code, headers=getattr(error, "headers", None))
    return PlainTextResponse(text, status_code=code, headers=getattr(error, "headers", None))
