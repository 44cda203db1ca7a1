"""The queries of the read models: jobs, runs, a run, run logs, the audit trail, servers and problems."""

from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

from actorbatch.domain.jobs import JobState
from actorbatch.domain.notifications import Notification
from actorbatch.domain.quarantine import Problem
from actorbatch.domain.runs import Run
from actorbatch.domain.servers import Server
from actorbatch.domain.users import UserState
from actorbatch.projections.rows import RunRows, codec, iso
from actorbatch.store.sql import SqlDb


class LogLine(NamedTuple):
    """One line of a run log: where it is in the log, which attempt wrote it, when (None: not recorded)."""

    position: int
    task: str
    attempt: int
    at: datetime | None
    line: str

    def to_json(self) -> dict[str, Any]:
        """As `run logs --json` (and the web console's log API) give it."""
        return {"task": self.task, "attempt": self.attempt, "at": iso(self.at), "line": self.line}


def _timed(stored: Any) -> Iterable[tuple[datetime | None, str]]:
    """A row's lines with their times; rows written before lines had times hold the lines alone."""
    if isinstance(stored, dict):
        return zip(stored["times"], stored["lines"], strict=True)
    return ((None, line) for line in stored)


class Queries:
    """What the listings, screens and a starting server read from the read models."""

    def __init__(self, db: SqlDb, rows: RunRows) -> None:
        self.db, self.rows = db, rows

    def jobs(self) -> list[dict[str, Any]]:
        rows = [codec.decode(d) for (d,) in self.db.query("SELECT data FROM ab_jobs ORDER BY name")]
        return [r for r in rows if not r["removed"]]

    def job_states(self) -> list[JobState]:
        """Every job that exists, as the domain folds it."""
        states = [JobState.from_dict(codec.decode(d)) for (d,) in self.db.query("SELECT data FROM ab_jobs")]
        return [s for s in states if s.exists]

    def job(self, name: str) -> dict[str, Any] | None:
        rows = self.db.query("SELECT data FROM ab_jobs WHERE name = ?", (name,))
        data = codec.decode(rows[0][0]) if rows else None
        return data if data and not data["removed"] else None

    def runs(self, *, job: str | None = None, status: str | None = None, now: datetime | None = None,
             since: datetime | None = None, limit: int = 100, after: str | None = None) -> list[Run]:
        """Runs newest due first. A run is stored `scheduled` if it was due later than its creation and has not
        started; whether it is still scheduled or already running depends on `now`. `status="active"`: either.
        `after` (a run id) pages by key: the runs that follow that one in this order, however deep the page."""
        where: list[str] = ["1 = 1"]
        params: list[Any] = []
        if job is not None:
            where.append("job = ?")
            params.append(job)
        if status == "active":
            where.append("status IN ('scheduled', 'running')")
        elif status == "scheduled":
            where.append("status = 'scheduled' AND due_at > ?")
            params.append(iso(now))
        elif status == "running":
            where.append("(status = 'running' OR (status = 'scheduled' AND due_at <= ?))")
            params.append(iso(now))
        elif status is not None:
            where.append("status = ?")
            params.append(status)
        if since is not None:
            where.append("due_at >= ?")
            params.append(iso(since))
        if after is not None:
            where.append("due_at <= (SELECT due_at FROM ab_runs WHERE id = ?) AND "  # the index's range
                         "(due_at < (SELECT due_at FROM ab_runs WHERE id = ?) OR id > ?)")
            params.extend((after, after, after))
        rows = self.db.query(f"SELECT data FROM ab_runs WHERE {' AND '.join(where)} "  # noqa: S608
                             "ORDER BY due_at DESC, id LIMIT ?", (*params, limit))
        return [self.rows.run(d) for (d,) in rows]

    def active_counts(self, now: datetime) -> tuple[int, int, int]:
        """How many active runs have started, how many are due but not started (queued), how many are due later."""
        rows = self.db.query("SELECT SUM(CASE WHEN started_at IS NOT NULL THEN 1 ELSE 0 END), "
                             "SUM(CASE WHEN started_at IS NULL AND (status = 'running' OR due_at <= ?) THEN 1 "
                             "ELSE 0 END), COUNT(*) FROM ab_runs WHERE status IN ('scheduled', 'running')",
                             (iso(now),))
        started, queued, total = (int(n or 0) for n in rows[0])
        return started, queued, total - started - queued

    def active_runs(self, limit: int, *, started: bool = False) -> list[Run]:
        """The most relevant active runs: started ones first, then the earliest due (the next to start);
        `started`: only those that have started."""
        where = "status IN ('scheduled', 'running')" + (" AND started_at IS NOT NULL" if started else "")
        rows = self.db.query(f"SELECT data FROM ab_runs WHERE {where} "  # noqa: S608 - fixed text
                             "ORDER BY CASE WHEN started_at IS NULL THEN 1 ELSE 0 END, due_at, id LIMIT ?", (limit,))
        return [self.rows.run(d) for (d,) in rows]

    def run(self, run_id: UUID) -> Run | None:
        rows = self.db.query("SELECT data FROM ab_runs WHERE id = ?", (str(run_id),))
        return self.rows.run(rows[0][0]) if rows else None

    def run_ids(self, prefix: str) -> list[str]:
        """Up to two run ids that start with `prefix`, quarantined runs the read models never held included."""
        return [r[0] for r in self.db.query(
            "SELECT id FROM ab_runs WHERE id LIKE ? UNION SELECT aggregate_id FROM ab_problems "
            "WHERE kind = 'run' AND aggregate_id LIKE ? LIMIT 2", (prefix + "%", prefix + "%"))]

    def logs(self, run_id: UUID, task: str | None = None, after: int = 0) -> list[LogLine]:
        """The run's log lines in log order, after position `after`."""
        rows = self.db.query("SELECT position, task, attempt, lines FROM ab_logs WHERE run_id = ? AND position > ? "
                             "ORDER BY position", (str(run_id), after))
        return [LogLine(p, t, a, at, line) for p, t, a, blob in rows if task in (None, t)
                for at, line in _timed(codec.decode(blob))]

    def audit(self, *, since: datetime | None = None, until: datetime | None = None, job: str | None = None,
              user: str | None = None, limit: int = 1000) -> list[dict[str, str]]:
        """Who did what, oldest first."""
        where: list[str] = ["1 = 1"]
        params: list[Any] = []
        for clause, value in (("at >= ?", iso(since)), ("at < ?", iso(until)), ("job = ?", job),
                              ("username = ?", user)):
            if value is not None:
                where.append(clause)
                params.append(value)
        rows = self.db.query("SELECT at, username, action, subject FROM ab_audit "  # noqa: S608
                             f"WHERE {' AND '.join(where)} ORDER BY position LIMIT ?", (*params, limit))
        return [{"at": at, "user": u, "action": action, "subject": subject} for at, u, action, subject in rows]

    def problems(self) -> list[Problem]:
        """Every aggregate a reader of the read models quarantined, open or put to rest, in log order."""
        rows = self.db.query("SELECT kind, aggregate_id, version, position, reason, rested, rest FROM ab_problems "
                             "ORDER BY COALESCE(position, 0), aggregate_id")
        return [Problem(kind, UUID(aid), version, reason, position, rested, rest)
                for kind, aid, version, position, reason, rested, rest in rows]

    def servers(self) -> list[Server]:
        result = []
        for (data,) in self.db.query("SELECT data FROM ab_servers ORDER BY name"):
            server = Server()
            vars(server).update(codec.decode(data))
            result.append(server)
        return result

    def users(self) -> list[UserState]:
        """Every user with a record (a profile, a grant or a token), by name."""
        rows = self.db.query("SELECT data FROM ab_users ORDER BY name")
        return [UserState.from_dict(codec.decode(d)) for (d,) in rows]

    def user(self, name: str) -> UserState | None:
        rows = self.db.query("SELECT data FROM ab_users WHERE name = ?", (name,))
        return UserState.from_dict(codec.decode(rows[0][0])) if rows else None

    def notification(self, notification_id: UUID) -> Notification | None:
        rows = self.db.query("SELECT data FROM ab_notifications WHERE id = ?", (str(notification_id),))
        return Notification.from_dict(codec.decode(rows[0][0])) if rows else None

    def notifications(self, run_id: UUID) -> list[Notification]:
        """A run's notifications, on every channel."""
        rows = self.db.query("SELECT data FROM ab_notifications WHERE run_id = ?", (str(run_id),))
        return [Notification.from_dict(codec.decode(d)) for (d,) in rows]

    def messages(self, user: str, unread_only: bool, limit: int) -> list[Notification]:
        """A user's system messages: unread first, then newest first."""
        unread = " AND is_read = 0" if unread_only else ""
        rows = self.db.query("SELECT data FROM ab_notifications WHERE owner = ? AND channel = 'message'"  # noqa: S608
                             f"{unread} ORDER BY is_read, queued_at DESC, id LIMIT ?", (user, limit))
        return [Notification.from_dict(codec.decode(d)) for (d,) in rows]

    def deliveries(self) -> list[Notification]:
        """E-mails and webhooks not finished: queued, being sent, or waiting to be retried."""
        rows = self.db.query("SELECT data FROM ab_notifications WHERE status IN ('queued', 'sending', 'retrying')")
        return [Notification.from_dict(codec.decode(d)) for (d,) in rows]
