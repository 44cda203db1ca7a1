"""History retention and database upkeep: `actorbatch history prune`, and the built-in job that runs them daily.

`actorbatch init` adds the job `actorbatch-maintenance` (daily at 03:00 UTC) unless it exists: it is an ordinary
job, so it can be shown, run now, rescheduled, replaced with another schedule or removed. Its two tasks are the
bodies below, which work on the store of the server that runs them.
"""

import os
import tomllib
from typing import Any

from actorbatch.api import Client
from actorbatch.clock import SystemClock
from actorbatch.domain.jobfile import parse_jobs
from actorbatch.domain.retention import FIELD, parse_retention
from actorbatch.projections import retention, schema
from actorbatch.runners.context import TaskContext
from actorbatch.store import upkeep as database
from actorbatch.store.urls import StoreUrl

JOB = "actorbatch-maintenance"
JOB_FILE = f"""
name = "{JOB}"
description = "Archive finished runs past their retention (ACTORBATCH_RETENTION), then VACUUM/ANALYZE the store"
alerts = "on-error"

[schedule]
daily = "03:00"
misfire = "run-once"
overlap = "skip"

[[tasks]]
name = "prune"
run = "actorbatch.maintenance:prune_task"
timeout = "6h"

[[tasks]]
name = "upkeep"
run = "actorbatch.maintenance:upkeep_task"
after = {{ prune = "ended" }}
timeout = "6h"
"""


def policy() -> dict[str, float]:
    """The retention policy in force: ACTORBATCH_RETENTION over the defaults (InvalidJob names a bad value)."""
    return parse_retention(os.environ.get(FIELD))


def prune(client: Client, dry_run: bool = False, keep: dict[str, float] | None = None) -> dict[str, Any]:
    """Archive finished runs past their retention and superseded heartbeats (see projections.retention)."""
    keep = policy() if keep is None else keep
    if not dry_run:
        client.commands.guard.check(client.user, "history.pruned", "history")
    client.views.catch_up()
    return retention.prune(client.views.projector, keep, client.clock.now(), dry_run)


def upkeep(client: Client) -> list[dict[str, str | float]]:
    """VACUUM/ANALYZE (SQLite) or VACUUM ANALYZE/REINDEX (PostgreSQL) of the project's tables."""
    client.commands.guard.check(client.user, "history.pruned", "upkeep")
    return database.upkeep(client.views.db, (*schema.ALL_TABLES, "ab_archive"))


def install(client: Client) -> bool:
    """Add the maintenance job unless a job of that name exists; whether it was added."""
    if any(job["name"] == JOB for job in client.jobs()):
        return False
    client.add_jobs(parse_jobs(tomllib.loads(JOB_FILE)))
    return True


def _client(ctx: TaskContext) -> Client:
    if not isinstance(ctx.store, StoreUrl):
        raise RuntimeError("the maintenance job runs on a batch server only")
    return Client(ctx.store.with_password(), ctx.user, SystemClock())


def prune_task(ctx: TaskContext) -> dict[str, Any]:
    """Task body: prune, and say in the run log what moved to the archive."""
    keep = policy()
    ctx.log.info("retention: %s", ", ".join(f"{s}={d / 86_400:g}d" for s, d in keep.items()))
    with _client(ctx) as client:
        outcome = prune(client, keep=keep)
    ctx.log.info("archived runs %s: %d events, %d heartbeats; live log %d events, archive %d",
                 outcome["runs"], outcome["events"], outcome["heartbeats"], outcome["live_events"],
                 outcome["archived_events"])
    return outcome


def upkeep_task(ctx: TaskContext) -> list[dict[str, str | float]]:
    """Task body: each upkeep step and its outcome in the run log; fails if any step failed."""
    with _client(ctx) as client:
        outcomes = upkeep(client)
    for step in outcomes:
        ctx.log.info("%s: %s", step["step"], step["outcome"] if step["outcome"] == "ok" else step["error"])
    failed = [str(s["step"]) for s in outcomes if s["outcome"] != "ok"]
    if failed:
        raise RuntimeError(f"upkeep failed: {'; '.join(failed)}")
    return outcomes
