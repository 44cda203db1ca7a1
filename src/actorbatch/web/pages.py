"""The console's pages: server-rendered HTML over the same client calls as the API and the CLI.

Each page has a live part (`NAME_live.html`): asked with `?fragment=1` it comes alone, and the page's script
fetches it again whenever the log moves (see `live.py`), so pages update without a reload.
"""

from pathlib import Path
from typing import Any

from jinja2 import select_autoescape
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from actorbatch.api import Client
from actorbatch.domain.durations import show_duration
from actorbatch.domain.jobs import TaskSpec
from actorbatch.domain.servers import capacity, window_of, window_spec, zone
from actorbatch.domain.statuses import RunStatus
from actorbatch.web import words
from actorbatch.web.auth import acting, reader, who
from actorbatch.web.graph import layout
from actorbatch.web.json_api import MAX_LIMIT, full_run_id, query_count, query_limit, query_text, query_time

PAGE_RUNS = 50  # rows per process monitor page
STATUS_ROWS = 20  # rows of each kind on the status screen (the counts above them cover all)
LOG_LINES = 5000  # a run page shows at most this many log lines at first; the rest follow live
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.autoescape = select_autoescape(default=True)
templates.env.filters.update(when=words.short_time, duration=show_duration, schedule=words.schedule)


def render(request: Request, name: str, **context: Any) -> Response:
    """The page `name`, or only its live part when the page's script asks for it."""
    template = f"{name}_live.html" if request.query_params.get("fragment") else f"{name}.html"
    return templates.TemplateResponse(request, template, {"user": who(request), "page": name, **context})


def _client(request: Request) -> Client:
    reader(request)
    client: Client = request.app.state.console.client
    return client


def status(request: Request) -> Response:
    """The status screen, now or (`as_of`) as it was at a past moment, with a slider over the log's time."""
    client = _client(request)
    rows, as_of = query_count(request, "rows", STATUS_ROWS, 1, 10_000), query_time(request, "as_of")
    first = client.audit(limit=1)
    return render(request, "status", screen=client.status(rows, as_of), as_of=as_of is not None,
                  log_start=first[0]["at"] if first else None)


def runs(request: Request) -> Response:
    client = _client(request)
    job, status_, after = query_text(request, "job"), query_text(request, "status"), query_text(request, "after")
    limit = query_limit(request, PAGE_RUNS)
    rows = client.runs(job, status_, query_time(request, "since"), limit, full_run_id(after) if after else None)
    filters = {"job": job or "", "status": status_ or "", "since": query_text(request, "since") or "",
               "limit": limit}
    return render(request, "runs", runs=rows, filters=filters, statuses=[s.value for s in RunStatus],
                  next_after=rows[-1]["id"] if len(rows) == limit and limit < MAX_LIMIT else None,
                  jobs=[j["name"] for j in client.jobs()])


def run(request: Request) -> Response:
    client = _client(request)
    state = client.run_state(request.path_params["run_id"])
    detail = client.run(state.id)
    specs = [task.spec for task in state.tasks.values()]
    graph = layout(specs, {t["name"]: t["status"] for t in detail["tasks"]})
    lines = client.logs(state.id)
    return render(request, "run", run=detail, graph=graph, specs={s.name: s for s in specs},
                  reasons=client.explain(state.id), logs=lines[-LOG_LINES:],
                  log_position=lines[-1].position if lines else 0)


def jobs(request: Request) -> Response:
    client = _client(request)
    rows = [_job(client, j["name"]) for j in client.jobs()]
    return render(request, "jobs", jobs=rows)


def job(request: Request) -> Response:
    client = _client(request)
    detail = _job(client, request.path_params["name"], fires=5)
    specs = [_spec(t) for t in detail["definition"]["tasks"]]
    return render(request, "job", job=detail, graph=layout(specs, {}),
                  runs=client.runs(detail["name"], None, None, 20))


def _job(client: Client, name: str, fires: int = 3) -> dict[str, Any]:
    detail: dict[str, Any] = client.job(name)
    schedule = detail["definition"]["schedule"]
    detail["fires"] = client.next_fires(name, fires) if detail["scheduled"] and schedule else []
    return detail


def _spec(task: dict[str, Any]) -> TaskSpec:
    """Enough of a task's spec to draw it: its name and its conditions."""
    return TaskSpec(name=task["name"], after=tuple((p, c) for p, c in task["after"]), when=task["when"])


def servers(request: Request) -> Response:
    """`server list`, with each server's capacity now (its windows, in its zone) and the windows themselves."""
    client = _client(request)
    now = client.clock.now()
    windows = {s.name: (capacity(s.threads, [window_of(w) for w in s.windows], zone(s.timezone), now),
                        [window_spec(w) for w in s.windows], s.timezone) for s in client.views.servers()}
    rows = [{**row, "capacity": windows[row["name"]][0], "windows": windows[row["name"]][1],
             "timezone": windows[row["name"]][2]} if row["name"] in windows else row for row in client.servers()]
    return render(request, "servers", servers=rows)


def audit(request: Request) -> Response:
    client = _client(request)
    filters = {k: query_text(request, k) or "" for k in ("since", "until", "job", "user")}
    entries = client.audit(query_time(request, "since"), query_time(request, "until"), filters["job"] or None,
                           filters["user"] or None, query_limit(request, 500))
    return render(request, "audit", entries=entries, filters=filters)


def messages(request: Request) -> Response:
    """The logged-in user's messages, the read ones too (unread first, which this reading marks read)."""
    return render(request, "messages", messages=acting(request).messages(all_messages=True))


def login(request: Request) -> Response:
    return render(request, "login", next=request.query_params.get("next", "/"))


def login_first(request: Request, reason: str) -> Response:
    """A page that needs a login, asked without one: the login form, with status 401, coming back here after."""
    return templates.TemplateResponse(request, "login.html", {"user": None, "page": "login", "reason": reason,
                                                              "next": request.url.path}, status_code=401)


ROUTES = [Route(path, endpoint, include_in_schema=False) for path, endpoint in (  # pages: not in the API's schema
    ("/", status), ("/runs", runs), ("/runs/{run_id}", run), ("/jobs", jobs), ("/jobs/{name}", job),
    ("/servers", servers), ("/audit", audit), ("/messages", messages), ("/login", login))]
