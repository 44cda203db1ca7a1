"""The web console in a real headless Chromium, against a real console process, a real batch server process and a
real SQLite store: pages show real data and follow the log live, without a reload."""

from pathlib import Path
from typing import Any

import pytest

import actorbatch
from tests.processes import start_server, stop
from tests.web import web_console
from tests.web_screens import add_jobs

pytestmark = pytest.mark.slow


def test_a_run_is_followed_live_from_submission_to_success(db_url: str, page: Any) -> None:
    with actorbatch.connect(db_url, user="alice") as client, web_console(db_url) as base:
        page.goto(base + "/")
        add_jobs(client)
        page.wait_for_selector('#live a[href="/jobs/month-end"]')  # a job added after the page was drawn
        page.wait_for_selector("body[data-live=on]")
        page.evaluate("window.notReloaded = true")
        run_id = str(client.run_job("month-end", params={"period": "2026-11"}))
        page.wait_for_selector(f'a[href="/runs/{run_id}"]')  # the active run appears on the status screen

        page.goto(f"{base}/runs/{run_id}")
        page.wait_for_selector("body[data-live=on]")
        page.evaluate("window.notReloaded = true")
        assert page.inner_text("#run-status") == "running"  # due, but no batch server has started yet
        assert page.locator("svg.graph g.node").count() == 6
        assert page.locator('svg.graph g.edge[data-parent="build-report"][data-child="on-failure"] text'
                            ).text_content() == "failed"
        server = start_server(db_url, "batch-1")
        try:
            page.wait_for_selector("#run-status .state-succeeded")
        finally:
            assert stop(server) == 0
        assert page.evaluate("window.notReloaded") is True
        statuses = dict(page.eval_on_selector_all(
            "svg.graph g.node", "nodes => nodes.map(n => [n.dataset.task, n.dataset.status])"))
        assert statuses == {"extract-gl": "succeeded", "extract-ar": "succeeded", "build-report": "succeeded",
                            "archive": "succeeded", "on-failure": "skipped", "notify": "succeeded"}
        page.wait_for_function("document.getElementById('logs').textContent.includes('region = EU')")
        assert "period = 2026-11" in page.inner_text("#logs")  # echo logs its params, live
        assert "batch-1" in page.inner_text("#live table")  # the server of each task


def test_every_page_shows_the_store(db_url: str, page: Any, tmp_path: Path) -> None:
    with actorbatch.connect(db_url, user="alice") as client:
        add_jobs(client)
        client.schedule("month-end", restart=True)
        run_ids = [str(r) for r in client.run_many("nightly-cleanup", [{"i": i} for i in range(5)])]
        server = start_server(db_url, "batch-1", threads=3)
        try:
            for run_id in run_ids:
                client.wait(run_id, timeout=60)
            with web_console(db_url) as base:
                page.goto(base + "/runs?limit=2")
                rows = page.locator("#live tbody tr")
                assert rows.count() == 2
                page.click("a[rel=next]")
                page.wait_for_url("**after=**")
                assert page.locator("#live tbody tr").count() == 2
                page.goto(base + "/runs?status=succeeded&job=nightly-cleanup&limit=50")
                assert page.locator("#live tbody tr").count() == 5
                page.goto(base + "/jobs")
                text = page.inner_text("#live")
                assert "daily at 02:00 (Europe/Berlin)" in text and "every 15 minutes (UTC)" in text
                page.goto(base + "/jobs/month-end")
                assert page.locator("svg.graph g.node").count() == 6
                assert "UTC (" in page.inner_text("#live dl")  # next fires, UTC and local
                page.goto(base + "/servers")
                assert "batch-1" in page.inner_text("#live") and "default" in page.inner_text("#live")
                row = page.locator("#live tbody tr").first.inner_text()
                assert "/3" in row  # running of its capacity now: 3 threads, no windows
                page.goto(base + "/audit")
                assert "job.added" in page.inner_text("#live") and "alice" in page.inner_text("#live")
                page.goto(base + "/")
                assert "<strong>2</strong> jobs" in page.inner_html("#live .counts")
                page.eval_on_selector("#as-of-slider", "s => { s.value = 0; s.dispatchEvent(new Event('input')); }")
                page.wait_for_selector("#screen-at[data-past=yes]")  # the status as the log began, no reload
                assert "<strong>1</strong> jobs" in page.inner_html("#live .counts")
                assert "as_of=" in page.url
                page.set_viewport_size({"width": 390, "height": 844})  # a phone
                page.goto(base + "/")
                assert page.evaluate("document.documentElement.scrollWidth") <= 390
        finally:
            assert stop(server) == 0
