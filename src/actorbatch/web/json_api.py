"""The JSON API under /api/: the CLI's `--json` documents, from the same client calls, so both always agree.

Each endpoint's docstring below its `---` is its OpenAPI description (served at /api/openapi.json).
"""

from typing import Any
from uuid import UUID

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import Route

from actorbatch import api
from actorbatch.domain.limits import check_count
from actorbatch.projections import documents
from actorbatch.web.auth import acting, reader
from actorbatch.web.responses import Json

MAX_LIMIT = 1_000_000


def _client(request: Request) -> api.Client:
    reader(request)
    client: api.Client = request.app.state.console.client
    return client


def query_text(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    return value or None


def query_time(request: Request, name: str) -> Any:
    """A time from the query, read as the CLI reads its options (UTC without an offset)."""
    text = query_text(request, name)
    return api.parse_time(text, field=name) if text is not None else None


def query_count(request: Request, name: str, default: int, low: int, high: int) -> int:
    """A whole number from the query, checked as the CLI checks the option of the same name."""
    text = query_text(request, name)
    if text is None:
        return default
    return check_count(int(text) if text.isdigit() else text, name, low, high)


def query_limit(request: Request, default: int) -> int:
    return query_count(request, "limit", default, 1, MAX_LIMIT)


def status(request: Request) -> Json:
    """
    ---
    summary: The status screen (`status --json`), now or as it was at a past moment
    parameters:
      - {name: rows, in: query, description: at most this many rows of each kind (the counts cover all),
         schema: {type: integer, default: 10, minimum: 1, maximum: 10000}}
      - {name: as_of, in: query, description: "ISO 8601 (UTC without an offset): as it was then (`--as-of`)",
         schema: {type: string}}
    responses: {200: {description: "counts; jobs, active runs, running tasks, servers; problems"}}
    """
    return Json(_client(request).status(query_count(request, "rows", api.STATUS_ROWS, 1, 10_000),
                                        query_time(request, "as_of")))


def jobs(request: Request) -> Json:
    """
    ---
    summary: Every job (`job list --json`)
    responses: {200: {description: "[{name, group, scheduled, next_fire, tasks}]"}}
    """
    return Json(documents.job_list_json(_client(request).jobs()))


def job(request: Request) -> Json:
    """
    ---
    summary: One job and its definition (`job show NAME --json`)
    parameters: [{name: name, in: path, required: true, schema: {type: string}}]
    responses: {200: {description: "the job"}, 404: {description: "no such job"}}
    """
    return Json(_client(request).job(request.path_params["name"]))


def runs(request: Request) -> Json:
    """
    ---
    summary: The process monitor (`run list --json`), newest due first
    parameters:
      - {name: job, in: query, schema: {type: string}}
      - {name: status, in: query, schema: {type: string, enum: [scheduled, running, succeeded, failed, cancelled]}}
      - {name: since, in: query, description: ISO 8601 (UTC without an offset), schema: {type: string}}
      - {name: limit, in: query, schema: {type: integer, default: 50, minimum: 1, maximum: 1000000}}
      - {name: after, in: query, description: "a run id: the page after that run (keyset paging)",
         schema: {type: string}}
    responses: {200: {description: "[{id, job, status, due_at, started_at, ended_at, duration_s}]"}}
    """
    client = _client(request)
    after = query_text(request, "after")
    if after is not None:
        after = full_run_id(after)
    return Json(client.runs(query_text(request, "job"), query_text(request, "status"),
                            query_time(request, "since"), query_limit(request, 50), after))


def full_run_id(text: str) -> str:
    try:
        return str(UUID(text))
    except ValueError:
        raise HTTPException(400, f"after: expected a full run id, got {text[:40]!r}") from None


def run(request: Request) -> Json:
    """
    ---
    summary: A run's detail (`run show RUN_ID --json`); the id or a unique prefix; as it was at `as_of`
    parameters:
      - {name: run_id, in: path, required: true, schema: {type: string}}
      - {name: as_of, in: query, description: "ISO 8601 (UTC without an offset)", schema: {type: string}}
    responses: {200: {description: "{id, job, status, due_at, started_at, ended_at, tasks: [...]}"},
                404: {description: "no such run"}}
    """
    client, as_of = _client(request), query_time(request, "as_of")
    return Json(documents.run_show_json(client.run(request.path_params["run_id"], as_of)))


def run_logs(request: Request) -> Json:
    """
    ---
    summary: A run's log lines after a position (`run logs --json`, each line with its log position)
    parameters:
      - {name: run_id, in: path, required: true, schema: {type: string}}
      - {name: task, in: query, schema: {type: string}}
      - {name: after, in: query, description: "the last position already read", schema: {type: integer}}
    responses: {200: {description: "[{task, attempt, at, line, position}]"}}
    """
    lines = _client(request).logs(request.path_params["run_id"], query_text(request, "task"),
                                  query_count(request, "after", 0, 0, 2**62))
    return Json([{**line.to_json(), "position": line.position} for line in lines])


def servers(request: Request) -> Json:
    """
    ---
    summary: Every server (`server list --json`)
    responses: {200: {description: "[{name, groups, threads, running, last_seen, alive}]"}}
    """
    return Json(_client(request).servers())


def audit(request: Request) -> Json:
    """
    ---
    summary: The audit trail (`audit log --json`), oldest first
    parameters:
      - {name: since, in: query, schema: {type: string}}
      - {name: until, in: query, schema: {type: string}}
      - {name: job, in: query, schema: {type: string}}
      - {name: user, in: query, schema: {type: string}}
      - {name: limit, in: query, schema: {type: integer, default: 1000}}
    responses: {200: {description: "[{at, user, action, subject}]"}}
    """
    return Json(_client(request).audit(query_time(request, "since"), query_time(request, "until"),
                                       query_text(request, "job"), query_text(request, "user"),
                                       query_limit(request, 1000)))


def messages(request: Request) -> Json:
    """
    ---
    summary: "The logged-in user's system messages (`messages --json`): unread ones, newest first; reading
      them marks them read"
    parameters: [{name: all, in: query, description: "true: also the messages read before (`--all`)",
                  schema: {type: boolean}}]
    responses: {200: {description: "[{at, run_id, job, status, read, text}]"}, 401: {description: no login}}
    """
    return Json(acting(request).messages(query_text(request, "all") in ("true", "1", "yes")))


ROUTES = [
    Route("/api/status", status), Route("/api/jobs", jobs), Route("/api/jobs/{name}", job),
    Route("/api/runs", runs), Route("/api/runs/{run_id}", run), Route("/api/runs/{run_id}/logs", run_logs),
    Route("/api/servers", servers), Route("/api/audit", audit), Route("/api/messages", messages),
]
