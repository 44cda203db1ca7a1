"""Every projection equals a fold of the log: the servers' books, the simulator's read models and the real ones.

A lease manager's book is built in three ways at once (its own decisions applied before they are appended, the
events it hears, and reloads after a conflict); each run in it must equal the log's events folded from scratch up
to the version the book holds, and its index of leases must agree with those runs. The simulator's own read
models must equal a fold of the whole log, and so must the product's SQL read models (`projections.views`),
caught up from the simulated log into an in-memory SQLite database.
"""

from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from actorbatch.behaviours.leasing import LeaseBehaviour
from actorbatch.domain.runs import Run, RunEvent
from actorbatch.projections.views import Views
from actorbatch.store.eventstore import EventStore
from actorbatch.store.sql import SqlDb
from actorbatch.store.urls import StoreUrl
from simulations.checkers import CheckFailed
from simulations.log import SimLog
from simulations.projection import Projection, fold

CHECKER = "projections-equal-log"
COPY_BATCH = 2000


def check_book(name: str, book: LeaseBehaviour, log: SimLog, views: Projection, at: datetime) -> None:
    """A server's lease book against the log."""
    for run_id, run in book.runs.items():
        truth = views.runs.get(run_id)
        if truth is None or run.version > truth.version:
            raise CheckFailed(CHECKER, f"{name}'s book holds v{run.version} of run {run_id}, which the log does "
                              f"not have (it has v{truth.version if truth else 0})", at)
        expected = truth if run.version == truth.version else _fold_run(log, run_id, run.version)
        if run.to_dict() != expected.to_dict():
            raise CheckFailed(CHECKER, f"{name}'s book differs from the log on run {run_id} at v{run.version}: "
                              f"{_difference(run.to_dict(), expected.to_dict())}", at)
    for (run_id, task), holder in book.leased.items():
        booked = book.runs.get(run_id)
        state = booked.tasks[task] if booked is not None else None
        if state is None or state.status != "running" or state.server != holder:
            raise CheckFailed(CHECKER, f"{name}'s lease index says {holder} holds {task} of run {run_id}, its "
                              f"book says {state.status if state else 'no such run'}", at)
    if book.holding != Counter(book.leased.values()):
        raise CheckFailed(CHECKER, f"{name}'s count of running attempts per server {dict(book.holding)} differs "
                          f"from its lease index {dict(Counter(book.leased.values()))}", at)
    for (run_id, task), attempt in book.mine.items():
        booked = book.runs.get(run_id)
        state = booked.tasks[task] if booked is not None else None
        if state is None or state.server != name or state.attempt != attempt.attempt:
            raise CheckFailed(CHECKER, f"{name} executes attempt {attempt.attempt} of {task} of run {run_id}, "
                              "which its book does not give it", at)


def check_projection(views: Projection, log: SimLog, at: datetime) -> None:
    """The incrementally kept read models against a fold of the whole log from scratch."""
    truth = fold(event for event, _ in log.entries)
    for name, mine, theirs in (("run", views.runs, truth.runs), ("job", views.jobs, truth.jobs),
                               ("notification", views.notifications, truth.notifications)):
        if mine.keys() != theirs.keys():
            raise CheckFailed(CHECKER, f"the read models hold {len(mine)} {name}s, the log {len(theirs)}", at)
        for key, aggregate in mine.items():
            if aggregate.to_dict() != theirs[key].to_dict():
                raise CheckFailed(CHECKER, f"the read model of {name} {key} differs from the log", at)


def check_read_models(views: Projection, log: SimLog, at: datetime) -> None:
    """The product's SQL read models against the simulator's fold: the simulated log is copied into a real
    in-memory store (so every event also goes through the msgpack transcoder) and folded into SQLite."""
    store = EventStore("memory://", create=True)
    db = SqlDb(StoreUrl("sqlite", path=":memory:"))
    try:
        for start in range(0, log.head(), COPY_BATCH):
            store.append(*(event for event, _ in log.entries[start:start + COPY_BATCH]))
        real = Views(store, db)
        real.create()
        real.catch_up()
        for run_id, run in views.runs.items():
            row = real.run(run_id)
            if row is None or row.to_dict() != run.to_dict():
                raise CheckFailed(CHECKER, f"the SQL read model of run {run_id} differs from the log: "
                                  f"{_difference(row.to_dict() if row else {}, run.to_dict())}", at)
        jobs = {j.id: j.to_dict() for j in real.job_states()}
        for job_id, job in views.jobs.items():
            if job.exists and jobs.get(job_id) != job.to_dict():
                raise CheckFailed(CHECKER, f"the SQL read model of job {job_id} differs from the log", at)
        for notification_id, notification in views.notifications.items():
            stored = real.queries.notification(notification_id)
            if stored is None or stored.to_dict() != notification.to_dict():
                raise CheckFailed(CHECKER, f"the SQL read model of notification {notification_id} differs from the "
                                  "log", at)
        servers = {s.id: vars(s) for s in real.servers()}
        for server_id, server in views.servers.items():
            if servers.get(server_id) != vars(server):
                raise CheckFailed(CHECKER, f"the SQL read model of server {server.name} differs from the log", at)
    finally:
        db.close()
        store.close()


def _fold_run(log: SimLog, run_id: UUID, version: int) -> Run:
    run = Run()
    for event in log.events(run_id)[:version]:
        assert isinstance(event, RunEvent)
        run.apply(event)
    return run


def _difference(mine: dict[str, Any], theirs: dict[str, Any]) -> str:
    keys: Iterable[str] = sorted(set(mine) | set(theirs))
    diffs = [f"{k}: {mine.get(k)!r} != {theirs.get(k)!r}" for k in keys if mine.get(k) != theirs.get(k)]
    return "; ".join(diffs)[:1000]
