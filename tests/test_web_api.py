"""The web console's JSON API, served by a real `actorbatch web` process: the same documents as the CLI's
`--json` for the same store, errors as status codes, and an OpenAPI description of every endpoint."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import actorbatch
from actorbatch.domain.jobfile import parse_job
from tests.processes import start_server, stop, wait_for
from tests.web import http, web_console

pytestmark = pytest.mark.slow


def cli_json(url: str, *args: str) -> Any:
    done = subprocess.run([sys.executable, "-m", "actorbatch", "--db", url, *args, "--json"], check=True,
                          capture_output=True, text=True, timeout=60)
    return json.loads(done.stdout)


@pytest.fixture
def finished_store(db_url: str, tmp_path: Path) -> tuple[str, str]:
    """A store with a job that has a finished run (with a log and a failed, ignored task) and a stopped server."""
    with actorbatch.connect(db_url, user="tester") as client:
        client.add_job(parse_job({"name": "report", "tasks": [
            {"name": "extract", "run": "actorbatch.examples:echo", "params": {"region": "EU"}},
            {"name": "check", "run": "actorbatch.examples:fail", "ignore_failure": True,
             "after": {"extract": "succeeded"}},
            {"name": "publish", "run": "actorbatch.examples:noop", "after": {"check": "ended"}}]}))
        server = start_server(db_url, "web-s1")
        try:
            run_id = client.run_job("report", params={"note": "hello"})
            assert client.wait(run_id, timeout=60)["status"] == "succeeded"
        finally:
            assert stop(server) == 0
    return db_url, str(run_id)


def test_every_listing_equals_the_cli_json(finished_store: tuple[str, str]) -> None:
    url, run_id = finished_store
    with actorbatch.connect(url) as client:
        moment = client.run(run_id)["due_at"]  # the run exists, no task has started
    with web_console(url) as base, http(base) as web:
        pairs = {
            f"/api/status?as_of={moment}": ("status", "--as-of", moment),
            f"/api/runs/{run_id}?as_of={moment}": ("run", "show", run_id, "--as-of", moment),
            "/api/jobs": ("job", "list"),
            "/api/jobs/report": ("job", "show", "report"),
            "/api/runs": ("run", "list"),
            "/api/runs?job=report&status=succeeded&limit=5": ("run", "list", "--job", "report", "--status",
                                                               "succeeded", "--limit", "5"),
            f"/api/runs/{run_id}": ("run", "show", run_id),
            f"/api/runs/{run_id[:8]}": ("run", "show", run_id[:8]),
            "/api/servers": ("server", "list"),
            "/api/audit": ("audit", "log"),
            "/api/audit?user=tester": ("audit", "log", "--user", "tester"),
        }
        for path, command in pairs.items():
            response = web.get(path)
            assert response.status_code == 200, path
            assert response.json() == cli_json(url, *command), path
        screen, cli_screen = web.get("/api/status").json(), cli_json(url, "status")
        assert {k: v for k, v in screen.items() if k != "at"} == {k: v for k, v in cli_screen.items() if k != "at"}
        logs = web.get(f"/api/runs/{run_id}/logs").json()
        assert [{k: v for k, v in line.items() if k != "position"} for line in logs] == cli_json(
            url, "run", "logs", run_id)
        assert any("EU" in line["line"] for line in logs if line["task"] == "extract")
        after = logs[0]["position"]  # lines written together share their event's position
        assert web.get(f"/api/runs/{run_id}/logs?after={after}").json() == [
            line for line in logs if line["position"] > after]


def test_the_process_monitor_pages_by_key(db_url: str) -> None:
    with actorbatch.connect(db_url, user="tester") as client:
        client.add_job(parse_job({"name": "many", "tasks": [{"name": "t", "run": "actorbatch.examples:noop"}]}))
        client.run_many("many", [{"i": i} for i in range(7)])
        client.run_job("many")
    with web_console(db_url) as base, http(base) as web:
        everything = web.get("/api/runs").json()
        pages, after = [], None
        while True:
            page = web.get("/api/runs", params={"limit": 3, **({"after": after} if after else {})}).json()
            if not page:
                break
            pages.append(page)
            after = page[-1]["id"]
        assert [len(p) for p in pages] == [3, 3, 2]
        assert [r for p in pages for r in p] == everything


def test_bad_requests_are_refused_with_a_status_and_one_line(db_url: str) -> None:
    with web_console(db_url) as base, http(base) as web:
        for path, code, text in [("/api/runs?limit=0", 400, "limit"), ("/api/runs?status=lost", 409, "--status"),
                                 ("/api/runs?since=yesterday", 400, "since"), ("/api/runs?after=zz", 400, "after"),
                                 ("/api/runs/abc", 404, "no run"), ("/api/jobs/nope", 404, "no job"),
                                 ("/api/runs/xyz/logs", 404, "hexadecimal")]:
            response = web.get(path)
            assert (response.status_code, path) == (code, path)
            assert text in response.json()["error"]


def test_the_openapi_document_describes_every_endpoint(db_url: str) -> None:
    with web_console(db_url) as base, http(base) as web:
        document = web.get("/api/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert {"/api/status", "/api/jobs", "/api/jobs/{name}", "/api/runs", "/api/runs/{run_id}",
            "/api/runs/{run_id}/logs", "/api/servers", "/api/audit", "/api/messages", "/api/events"
            } <= {path for path, methods in document["paths"].items() if "get" in methods}
    assert {"/api/jobs/{name}/run", "/api/runs/{run_id}/cancel", "/api/runs/{run_id}/retry",
            "/api/jobs/{name}/schedule", "/api/jobs/{name}/unschedule", "/api/servers/{name}/drain", "/api/login",
            "/api/logout"} <= {path for path, methods in document["paths"].items() if "post" in methods}
    runs = document["paths"]["/api/runs"]["get"]
    assert {p["name"] for p in runs["parameters"]} == {"job", "status", "since", "limit", "after"}


@pytest.mark.postgres
def test_a_postgresql_store_is_served_the_same(pg_url: str) -> None:
    with actorbatch.connect(pg_url) as client:
        client.add_job(parse_job({"name": "pg-job", "tasks": [{"name": "t", "run": "actorbatch.examples:noop"}]}))
        run_id = str(client.run_job("pg-job"))
    with web_console(pg_url) as base, http(base) as web:
        for path, command in {"/api/jobs": ("job", "list"), "/api/runs": ("run", "list"),
                              f"/api/runs/{run_id}": ("run", "show", run_id), "/api/audit": ("audit", "log")}.items():
            assert web.get(path).json() == cli_json(pg_url, *command), path
        assert web.get("/").status_code == 200
        with actorbatch.connect(pg_url) as client:
            later = str(client.run_job("pg-job"))  # heard through the log's commit notifications
        wait_for(lambda: any(r["id"] == later for r in web.get("/api/runs").json()), 30, "the new run")


def test_messages_are_the_logged_in_users_own(db_url: str) -> None:
    with actorbatch.connect(db_url, user="tester") as client:
        client.add_job(parse_job({"name": "breaks", "alerts": "always",
                                  "tasks": [{"name": "t", "run": "actorbatch.examples:fail"}]}))
        token = client.issue_token()
        server = start_server(db_url, "web-s1")
        try:
            client.wait(client.run_job("breaks"), timeout=60)
            wait_for(lambda: bool(client.messages(all_messages=True)), 60, "the system message")
        finally:
            assert stop(server) == 0
    with web_console(db_url) as base, http(base) as web:
        assert web.get("/api/messages").status_code == 401
        mine = web.get("/api/messages?all=true", headers={"Authorization": f"Bearer {token}"}).json()
        assert mine == cli_json(db_url, "--user", "tester", "messages", "--all")
        assert [(m["job"], m["status"], m["read"]) for m in mine] == [("breaks", "failed", True)]
        page = web.get("/messages", headers={"Authorization": f"Bearer {token}"})
        assert page.status_code == 200 and "breaks" in page.text
