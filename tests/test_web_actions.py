"""Actions in the web console: a login with a token, the CLI's privileges (401 without a login, 403 without the
privilege), sessions that end with their token, CSRF protection; through the API and in a real Chromium."""

from pathlib import Path
from typing import Any

import pytest

import actorbatch
from tests.web import http, web_console
from tests.web_screens import add_jobs

pytestmark = pytest.mark.slow


@pytest.fixture
def closed_store(db_url: str) -> tuple[str, dict[str, str]]:
    """A store whose owner (the OS user) granted itself and alice `admin` (so it is closed), bob who may run jobs,
    carol who may do nothing; their tokens."""
    with actorbatch.connect(db_url) as owner:
        owner.grant(owner.user, ["admin"])
        add_jobs(owner)
        owner.grant("alice", ["admin"])
        owner.grant("bob", ["job.run"])
        tokens = {name: owner.issue_token(name) for name in ("alice", "bob", "carol")}
    return db_url, tokens


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_api_needs_a_login_and_the_privilege(closed_store: tuple[str, dict[str, str]]) -> None:
    url, tokens = closed_store
    with web_console(url) as base, http(base) as web:
        assert web.get("/api/runs").status_code == 401  # a closed store: reading needs a login too
        assert web.get("/api/runs", headers=bearer("alice:not-her-token")).status_code == 401
        assert web.get("/api/runs", headers=bearer(tokens["carol"])).status_code == 200
        refused = web.post("/api/jobs/month-end/run", json={}, headers=bearer(tokens["carol"]))
        assert (refused.status_code, refused.json()) == (403, {"error": "permission denied: carol lacks job.run"})
        assert web.post("/api/jobs/month-end/run", json={}).status_code == 401
        ran = web.post("/api/jobs/month-end/run", json={"params": {"period": "2026-11"}, "at": "2030-01-01T02:00"},
                       headers=bearer(tokens["bob"]))
        assert ran.status_code == 200 and ran.json()["status"] == "scheduled"
        run_id = ran.json()["run_id"]
        detail = web.get(f"/api/runs/{run_id}", headers=bearer(tokens["bob"])).json()
        assert detail["due_at"].startswith("2030-01-01T01:00:00")  # 02:00 in the job's zone, Europe/Berlin
        assert web.post("/api/jobs/month-end/run", json={"params": [1]},
                        headers=bearer(tokens["bob"])).status_code == 400
        assert web.post("/api/jobs/month-end/unschedule", headers=bearer(tokens["bob"])).status_code == 403
        assert web.post(f"/api/runs/{run_id}/cancel", headers=bearer(tokens["carol"])).status_code == 403
        cancelled = web.post(f"/api/runs/{run_id}/cancel", headers=bearer(tokens["bob"]))  # his own run
        assert cancelled.json() == {"run_id": run_id, "status": "cancelled"}
        assert web.post(f"/api/runs/{run_id}/cancel", headers=bearer(tokens["bob"])).status_code == 409
        assert web.post(f"/api/runs/{run_id}/retry", headers=bearer(tokens["carol"])).status_code == 403
        retried = web.post(f"/api/runs/{run_id}/retry", json={"all": True}, headers=bearer(tokens["bob"]))
        assert retried.status_code == 200 and retried.json()["run_id"] != run_id
        again = web.get(f"/api/runs/{retried.json()['run_id']}", headers=bearer(tokens["bob"])).json()
        assert (again["job"], again["params"]) == ("month-end", {"period": "2026-11"})
        assert web.post("/api/jobs/month-end/unschedule", headers=bearer(tokens["alice"])).json() == {
            "job": "month-end", "scheduled": False}
        assert web.post("/api/servers/nobody/drain", headers=bearer(tokens["alice"])).status_code == 404
        audit = web.get("/api/audit", headers=bearer(tokens["alice"])).json()
        assert {"user": "carol", "action": "access.denied"} in [
            {k: e[k] for k in ("user", "action")} for e in audit]
    with actorbatch.connect(url) as owner:
        owner.issue_token("bob")  # revokes bob's first token
    with web_console(url) as base, http(base) as web:
        assert web.get("/api/runs", headers=bearer(tokens["bob"])).status_code == 401


def test_public_read_opens_the_pages_but_not_the_actions(closed_store: tuple[str, dict[str, str]]) -> None:
    url, _ = closed_store
    with web_console(url, "--public-read") as base, http(base) as web:
        assert web.get("/api/jobs").status_code == 200
        assert web.get("/").status_code == 200
        assert web.post("/api/jobs/month-end/run", json={}).status_code == 401


def test_sessions_need_the_csrf_token_and_end_with_their_token(closed_store: tuple[str, dict[str, str]]) -> None:
    url, tokens = closed_store
    with web_console(url) as base, http(base) as web:
        web.get("/login")
        csrf = web.cookies["csrftoken"]
        assert web.post("/api/login", json={"token": tokens["bob"]}).status_code == 403  # no CSRF header
        login = web.post("/api/login", json={"token": tokens["bob"]}, headers={"x-csrftoken": csrf})
        assert login.json() == {"user": "bob"}
        assert web.get("/api/runs").status_code == 200  # the session cookie
        assert web.post("/api/jobs/month-end/run", json={}).status_code == 403  # a session without the header
        assert web.post("/api/jobs/month-end/run", json={}, headers={"x-csrftoken": csrf}).status_code == 200
        with actorbatch.connect(url) as owner:
            owner.issue_token("bob")
        assert web.get("/api/runs").status_code == 401  # the new token ended the session


def test_log_in_run_and_cancel_in_the_browser_and_be_refused_without_the_privilege(
        closed_store: tuple[str, dict[str, str]], page: Any, tmp_path: Path) -> None:
    url, tokens = closed_store
    page.on("dialog", lambda dialog: dialog.accept())
    with web_console(url) as base:
        page.goto(base + "/")
        assert "log in first" in page.content()  # 401: a closed store needs a login to read
        page.goto(base + "/login?next=/jobs/month-end")
        page.fill("input[name=token]", tokens["bob"])
        page.click("form[data-login] button")
        page.wait_for_url(f"{base}/jobs/month-end")
        assert page.inner_text("header .who").startswith("bob")
        page.fill("input[name=params]", '{"period": "2026-12"}')
        page.fill("input[name=at]", "2031-01-01T00:00")
        page.click("form[data-run-form] button")
        page.wait_for_url("**/runs/*")
        assert page.inner_text("#run-status") == "scheduled"
        assert '"period": "2026-12"' in page.inner_text("#live dl")
        page.click("button[data-action$='/cancel']")
        page.wait_for_selector("#run-status .state-cancelled")  # live, without a reload

        page.click("header [data-logout]")
        page.wait_for_url(f"{base}/")
        assert "log in first" in page.content()  # the session ended
        page.goto(base + "/login?next=/jobs/month-end")
        page.fill("input[name=token]", tokens["carol"])
        page.click("form[data-login] button")
        page.wait_for_url(f"{base}/jobs/month-end")
        page.click("form[data-run-form] button")
        page.wait_for_selector("#notice.error")
        assert page.inner_text("#notice") == "permission denied: carol lacks job.run"
