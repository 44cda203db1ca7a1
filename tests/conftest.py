"""Shared fixtures: fresh SQLite stores in temporary folders, a manual clock, and the PostgreSQL test database."""

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import actorbatch
from actorbatch.clock import ManualClock
from actorbatch.projections.schema import ALL_TABLES

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
PG_URL = os.environ.get("ACTORBATCH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'actorbatch.db'}"
    actorbatch.init(url)
    return url


@pytest.fixture
def client(db_url: str) -> Iterator[actorbatch.Client]:
    with actorbatch.connect(db_url, user="tester") as c:
        yield c


def pg_available() -> str | None:
    """None if the test PostgreSQL answers, else why not."""
    try:
        import psycopg

        with psycopg.connect(PG_URL.replace("postgresql://", "postgresql://", 1), connect_timeout=3):
            return None
    except Exception as error:
        return f"PostgreSQL at {PG_URL} is not reachable ({type(error).__name__}); set ACTORBATCH_TEST_PG"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium (the web console's tests); skipped outside CI where it is not installed."""
    from tests.web_screens import CHROMIUM, launch

    if not os.path.exists(CHROMIUM) and not os.environ.get("CI"):
        pytest.skip(f"no Chromium at {CHROMIUM} (CI installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context's page at 1280x800."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


@pytest.fixture
def pg_url() -> str:
    """A clean actorbatch store in the test PostgreSQL database."""
    reason = pg_available()
    if reason:
        pytest.skip(reason)
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        for table in ("actorbatch_events", *ALL_TABLES, "ab_archive"):
            conn.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    actorbatch.init(PG_URL)
    return PG_URL
