"""A demo store for the web console's browser tests and screenshots, and the command that regenerates the
screenshots in docs/images: `python -m tests.web_screens`."""

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import actorbatch
from actorbatch.domain.jobfile import parse_job
from tests.processes import start_server, stop
from tests.web import web_console

CHROMIUM = os.environ.get("ACTORBATCH_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
PAGES = {"status": "/", "runs": "/runs", "run": "/runs/{run_id}", "jobs": "/jobs", "job": "/jobs/month-end",
         "servers": "/servers", "audit": "/audit", "login": "/login"}

MONTH_END = {"name": "month-end", "description": "Extract ledgers, build the report, archive it", "priority": "high",
             "schedule": {"daily": "02:00", "timezone": "Europe/Berlin"},
             "tasks": [{"name": "extract-gl", "run": "actorbatch.examples:echo", "params": {"region": "EU"}},
                       {"name": "extract-ar", "run": "actorbatch.examples:noop"},
                       {"name": "build-report", "run": "actorbatch.examples:sleep", "params": {"seconds": 0.2},
                        "after": {"extract-gl": "succeeded", "extract-ar": "succeeded"}},
                       {"name": "archive", "run": "actorbatch.examples:noop", "after": {"build-report": "succeeded"}},
                       {"name": "on-failure", "run": "actorbatch.examples:noop",
                        "after": {"build-report": "failed"}},
                       {"name": "notify", "run": "actorbatch.examples:noop", "when": "any",
                        "after": {"build-report": "ended", "archive": "ended"}}]}


def add_jobs(client: actorbatch.Client) -> None:
    client.add_job(parse_job(MONTH_END))
    client.add_job(parse_job({"name": "nightly-cleanup", "schedule": {"every": "15m"},
                              "tasks": [{"name": "clean", "run": "actorbatch.examples:noop"}]}))


def launch(playwright: Any) -> Any:
    """Debian's Chromium, headless, talking to 127.0.0.1 directly whatever proxy the environment names."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-proxy-server"])


@contextmanager
def demo(folder: Path) -> Iterator[tuple[str, str]]:
    """A store with jobs and finished runs, a live batch server and a console: (console URL, a run id)."""
    url = f"sqlite:///{folder / 'actorbatch.db'}"
    actorbatch.init(url)
    with actorbatch.connect(url, user="alice") as client:
        add_jobs(client)
        server = start_server(url, "batch-1", threads=4)
        try:
            client.wait(client.run_job("nightly-cleanup"), timeout=60)
            run_id = client.run_job("month-end", params={"period": "2026-11"})
            client.wait(run_id, timeout=60)
            with web_console(url) as base:
                yield base, str(run_id)
        finally:
            stop(server)


def main(target: Path) -> None:
    from playwright.sync_api import sync_playwright

    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder, demo(Path(folder)) as (base, run_id), \
            sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        for name, path in PAGES.items():
            page.goto(base + path.format(run_id=run_id))
            page.screenshot(path=str(target / f"web-{name}.png"), full_page=True)
        browser.close()
    print(f"screenshots of {len(PAGES)} pages in {target}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent.parent / "docs" / "images")
