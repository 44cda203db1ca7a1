"""What a logged-in user can do from the console: the CLI's commands, through the same client calls, so each is
checked by the same privilege guard (403 when it refuses) and validated by the same gateway (400).

`POST /api/jobs/{name}/run` (body `{"params", "at", "key"}`), `/api/runs/{id}/cancel`, `/api/runs/{id}/retry` (body
`{"all"}`), `/api/jobs/{name}/schedule`, `/api/jobs/{name}/unschedule`, `/api/servers/{name}/drain`; and
`POST /api/login` (body `{"token"}`), `POST /api/logout` for the pages' session.
"""

import json
from collections.abc import Callable
from typing import Any

import anyio.to_thread
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import Route

from actorbatch import api
from actorbatch.domain.limits import check_params
from actorbatch.web import auth
from actorbatch.web.responses import Json

MAX_BODY_BYTES = 1 << 20


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise HTTPException(413, f"body: at most {MAX_BODY_BYTES} bytes")
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise HTTPException(400, "body: expected a JSON object") from None
    if not isinstance(body, dict):
        raise HTTPException(400, "body: expected a JSON object")
    return body


async def _act(request: Request, action: Callable[[api.Client], dict[str, Any]]) -> Json:
    """Run `action` as the logged-in user (401 without one), then catch the read models up, so the page the user
    goes to next already shows what they did."""
    client = auth.acting(request)
    console = request.app.state.console
    result = await anyio.to_thread.run_sync(lambda: action(client))
    await anyio.to_thread.run_sync(console.refresh)
    return Json(result)


async def run_job(request: Request) -> Json:
    """
    ---
    summary: Run a job now, or once later (`job run NAME --json`); needs job.run
    parameters: [{name: name, in: path, required: true, schema: {type: string}}]
    requestBody: {content: {application/json: {schema: {type: object, properties: {
      params: {type: object}, at: {type: string, description: ISO 8601, in the job's zone without an offset},
      key: {type: string, description: "idempotency key: a repeat with the same key returns the first run"}}}}}}
    responses: {200: {description: "{run_id, status}"}, 401: {description: no login},
                403: {description: privilege missing}}
    """
    name, body = request.path_params["name"], await _body(request)
    params = check_params(body.get("params") or {}, "params")
    at, key = body.get("at"), body.get("key")
    if at is not None and not isinstance(at, str):
        raise HTTPException(400, "at: expected an ISO 8601 time as a string")

    def submit(client: api.Client) -> dict[str, Any]:
        when = api.parse_time(at, client.job_zone(name), "at") if at else None
        run_id = client.run_job(name, params, when, key)
        return {"run_id": str(run_id), "status": "scheduled" if when and when > client.clock.now() else "running"}

    return await _act(request, submit)


async def cancel(request: Request) -> Json:
    """
    ---
    summary: Cancel a run (`run cancel`); one's own needs nothing, another user's needs run.cancel
    parameters: [{name: run_id, in: path, required: true, schema: {type: string}}]
    responses: {200: {description: "{run_id, status}"}, 401: {description: no login},
                403: {description: privilege missing}, 409: {description: already complete}}
    """
    ref = request.path_params["run_id"]
    return await _act(request, lambda client: {"run_id": str(client.cancel(ref)), "status": "cancelled"})


async def retry(request: Request) -> Json:
    """
    ---
    summary: "Run a finished run again (`run retry --json`); needs job.run. Tasks that succeeded keep their
      outcome unless the body says {all: true}"
    parameters: [{name: run_id, in: path, required: true, schema: {type: string}}]
    requestBody: {content: {application/json: {schema: {type: object, properties: {all: {type: boolean}}}}}}
    responses: {200: {description: "{run_id, status}: the new run"}, 401: {description: no login},
                403: {description: privilege missing}, 409: {description: not finished}}
    """
    ref, everything = request.path_params["run_id"], (await _body(request)).get("all", False)
    if not isinstance(everything, bool):
        raise HTTPException(400, "all: expected true or false")
    return await _act(request, lambda client: {"run_id": str(client.retry(ref, everything=everything)),
                                               "status": "running"})


async def schedule(request: Request) -> Json:
    """
    ---
    summary: Start a job's schedule (`job schedule`); needs job.manage
    parameters: [{name: name, in: path, required: true, schema: {type: string}}]
    responses: {200: {description: "{job, scheduled}"}, 401: {description: no login},
                403: {description: privilege missing}}
    """
    return await _set_schedule(request, True)


async def unschedule(request: Request) -> Json:
    """
    ---
    summary: Stop a job's schedule (`job unschedule`); needs job.manage
    parameters: [{name: name, in: path, required: true, schema: {type: string}}]
    responses: {200: {description: "{job, scheduled}"}, 401: {description: no login},
                403: {description: privilege missing}}
    """
    return await _set_schedule(request, False)


async def _set_schedule(request: Request, on: bool) -> Json:
    """`schedule` and `unschedule` differ only in the command they call and the state they report."""
    name = request.path_params["name"]

    def act(client: api.Client) -> dict[str, Any]:
        (client.schedule if on else client.unschedule)(name)
        return {"job": name, "scheduled": on}

    return await _act(request, act)


async def drain(request: Request) -> Json:
    """
    ---
    summary: Ask a server to drain and stop (`server drain`); needs server.manage
    parameters: [{name: name, in: path, required: true, schema: {type: string}}]
    responses: {200: {description: "{server, draining}"}, 401: {description: no login},
                403: {description: privilege missing}}
    """
    name = request.path_params["name"]

    def ask(client: api.Client) -> dict[str, Any]:
        client.drain(name)
        return {"server": name, "draining": True}

    return await _act(request, ask)


async def login(request: Request) -> Json:
    """
    ---
    summary: Start a session with a token from `actorbatch user token USER`
    requestBody: {content: {application/json: {schema: {type: object, properties: {token: {type: string}}}}}}
    responses: {200: {description: "{user}"}, 401: {description: token not valid}}
    """
    token = (await _body(request)).get("token")
    if not isinstance(token, str) or not token:
        raise HTTPException(400, "token: give the token `actorbatch user token USER` printed")
    user = await anyio.to_thread.run_sync(lambda: auth.token_user(request, token))
    auth.start_session(request, user)
    return Json({"user": user})


async def logout(request: Request) -> Json:
    """
    ---
    summary: End the session
    responses: {200: {description: "{user: null}"}}
    """
    request.session.clear()
    return Json({"user": None})


ROUTES = [
    Route("/api/jobs/{name}/run", run_job, methods=["POST"]),
    Route("/api/runs/{run_id}/cancel", cancel, methods=["POST"]),
    Route("/api/runs/{run_id}/retry", retry, methods=["POST"]),
    Route("/api/jobs/{name}/schedule", schedule, methods=["POST"]),
    Route("/api/jobs/{name}/unschedule", unschedule, methods=["POST"]),
    Route("/api/servers/{name}/drain", drain, methods=["POST"]),
    Route("/api/login", login, methods=["POST"]), Route("/api/logout", logout, methods=["POST"]),
]
