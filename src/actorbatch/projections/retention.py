"""Applying the retention policy: finished runs past their age, and superseded heartbeats, move to the archive.

The runs to archive are found in the read models (status and end time are columns of `ab_runs`); their events (the
run's own, its run-log streams and its notifications) move to the archive, and their rows leave the read models, in
one transaction per chunk of runs, so a reader sees a run either live or archived. A rebuild folds the live log
only, so it gives the same read models. Heartbeats move in one more transaction (see `store.archive`).
"""

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from actorbatch.domain.events import log_id
from actorbatch.domain.notifications import Notification, notification_ids
from actorbatch.domain.quarantine import fold_stream
from actorbatch.domain.retention import cutoffs
from actorbatch.domain.runs import LogWritten, Run, scheduled_run_id
from actorbatch.domain.servers import ServerHeartbeat
from actorbatch.projections.projector import Projector
from actorbatch.projections.queries import LogLine
from actorbatch.projections.rows import iso
from actorbatch.store.archive import Archive
from actorbatch.store.eventstore import EventStore
from actorbatch.store.topics import TOPICS

RUNS_PER_TRANSACTION = 2_000  # writers wait for each transaction: keep each short
HEARTBEAT = TOPICS[ServerHeartbeat]
A = TypeVar("A")


def prune(projector: Projector, policy: Mapping[str, float], now: datetime, dry_run: bool = False) -> dict[str, Any]:
    """Archive what the policy says is old enough (or, with `dry_run`, count it); returns what was (or would be)
    archived: runs per status, their events, heartbeats, and the live log and archive sizes after."""
    db, archive = projector.db, projector.archive
    # Each job's latest fire stays: its time is where the job's schedule resumes, and a rebuild must find it in
    # the live log (else a starting scheduler would take that fire time for missed and run it again).
    latest = {str(scheduled_run_id(j.id, j.last_fire)) for j in projector.queries.job_states()
              if j.id is not None and j.last_fire is not None}
    by_status: dict[str, list[str]] = {}
    for status, cutoff in cutoffs(policy, now).items():
        by_status[status] = [str(i) for (i,) in db.query(
            "SELECT id FROM ab_runs WHERE status = ? AND COALESCE(ended_at, due_at) < ? ORDER BY id",
            (status, iso(cutoff))) if str(i) not in latest]
    run_ids = sorted(i for ids in by_status.values() for i in ids)
    stamp = iso(now) or ""
    events = heartbeats = 0
    for start in range(0, len(run_ids), RUNS_PER_TRANSACTION):
        chunk = run_ids[start:start + RUNS_PER_TRANSACTION]
        with db.transaction():
            upto = min(projector.position(lock=True), archive.head() - 1)
            aggregates = _aggregates(projector, chunk)
            if dry_run:
                events += archive.count_aggregates(aggregates, upto)
                continue
            events += archive.move_aggregates(aggregates, upto, stamp)
            _drop_rows(projector, chunk)
    with db.transaction():
        upto = min(projector.position(lock=True), archive.head() - 1)
        heartbeats = archive.count_heartbeats(HEARTBEAT, upto) if dry_run else \
            archive.move_heartbeats(HEARTBEAT, upto, stamp)
    return {"dry_run": dry_run, "runs": {s: len(ids) for s, ids in by_status.items()}, "events": events,
            "heartbeats": heartbeats, "live_events": archive.count_live(), "archived_events": archive.count()}


def _aggregates(projector: Projector, run_ids: Sequence[str]) -> list[UUID]:
    """The runs, their run-log streams (one per task attempt that wrote lines) and their notifications."""
    streams: list[UUID] = []
    for start in range(0, len(run_ids), 500):
        chunk = run_ids[start:start + 500]
        marks = ", ".join("?" * len(chunk))
        streams += [log_id(UUID(r), t, int(a)) for r, t, a in projector.db.query(
            f"SELECT DISTINCT run_id, task, attempt FROM ab_logs WHERE run_id IN ({marks})", chunk)]  # noqa: S608
        streams += [UUID(n) for (n,) in projector.db.query(
            f"SELECT id FROM ab_notifications WHERE run_id IN ({marks})", chunk)]  # noqa: S608
    return [*(UUID(r) for r in run_ids), *streams]


def _drop_rows(projector: Projector, run_ids: Sequence[str]) -> None:
    """The runs' rows in the read models: the run, its log lines, its notifications, the audit rows of actions
    on it."""
    for start in range(0, len(run_ids), 500):
        chunk = run_ids[start:start + 500]
        marks = ", ".join("?" * len(chunk))
        for statement in ("DELETE FROM ab_runs WHERE id IN ({})", "DELETE FROM ab_logs WHERE run_id IN ({})",
                          "DELETE FROM ab_notifications WHERE run_id IN ({})",
                          "DELETE FROM ab_audit WHERE subject IN ({})"):
            projector.db.execute(statement.format(marks), chunk)
    projector.forget()


def archived_run(archive: Archive, store: EventStore, run_id: UUID) -> Run | None:
    """A run `history prune` moved to the archive, folded from its archived events (read-only)."""
    return _archived(archive, store, run_id, Run)


def archived_notifications(archive: Archive, store: EventStore, run: Run) -> list[Notification]:
    """An archived run's notifications, folded from their archived events."""
    assert run.definition is not None
    found = (_archived(archive, store, i, Notification)
             for i in notification_ids(run.id, run.user, run.definition.notify))
    return [n for n in found if n is not None]


def _archived(archive: Archive, store: EventStore, aggregate_id: UUID, factory: Callable[[], A]) -> A | None:
    events = [store.decode(e) for e in archive.of(aggregate_id)]
    return fold_stream(factory, events) if events else None


def archived_logs(archive: Archive, store: EventStore, run: Run, task: str | None, after: int) -> list[LogLine]:
    """An archived run's log lines, read back from its archived run-log streams, in log order."""
    lines = []
    for name, state in run.tasks.items():
        for attempt in range(1, state.attempt + 1) if task in (None, name) else ():
            for stored in archive.of(log_id(run.id, name, attempt)):
                event = store.decode(stored)
                if isinstance(event, LogWritten) and stored.id > after:
                    times = event.times or (event.timestamp,) * len(event.lines)
                    lines += [LogLine(stored.id, name, attempt, at, line)
                              for at, line in zip(times, event.lines, strict=True)]
    return sorted(lines, key=lambda line: line.position)
