"""The read models of one store, behind one object: the status screen, process monitor, run detail, run log, audit
trail, servers and problems, kept in tables beside the log.

`schema` creates and checks the tables, the `Projector` keeps them up to date by folding the log, and `Queries`
reads them; `Views` puts the three together on one store and one database connection.
"""

import functools
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from actorbatch.domain.jobs import JobState
from actorbatch.domain.notifications import Notification
from actorbatch.domain.quarantine import Problem
from actorbatch.domain.runs import Run
from actorbatch.domain.servers import Server
from actorbatch.domain.users import UserState
from actorbatch.node.ports import Seed
from actorbatch.projections import schema, snapshots
from actorbatch.projections.queries import LogLine, Queries
from actorbatch.projections.rows import RunRows
from actorbatch.store.eventstore import EventStore
from actorbatch.store.sql import SqlDb

if TYPE_CHECKING:
    from actorbatch.projections.past import Past
    from actorbatch.projections.projector import Projector
    from actorbatch.projections.verification import Head


class Views:
    """All read models of one store: create, catch up, rebuild and query."""

    def __init__(self, store: EventStore, db: SqlDb, past: "Past | None" = None) -> None:
        self.store, self.db = store, db
        rows = RunRows(db)  # one cache of job definitions, for the projector's writes and the queries' reads
        self.queries = Queries(db, rows)
        self._rows, self._past = rows, past

    @functools.cached_property
    def projector(self) -> "Projector":
        """Made when first needed: a listing whose read models are up to date folds nothing (see `catch_up`)."""
        from actorbatch.projections.projector import Projector

        return Projector(self.store, self.db, self._rows, self.queries, self._past)

    def as_of(self, moment: datetime) -> "Views":
        """The read models as they were at `moment`, in a scratch database (close its `db` after use): the last
        snapshot taken before it, and the events after that folded by the same projector (see `past`)."""
        from actorbatch.projections.past import SCRATCH, Past

        scratch = Views(self.store, SqlDb(SCRATCH), Past(moment, self.projector.archive))
        scratch.create()
        found = snapshots.latest_before(self.db, moment)
        if found is not None:
            snapshots.restore(scratch.db, *found)
        scratch.catch_up()
        return scratch

    # ---- the tables ----

    def create(self) -> None:
        schema.create(self.db)

    def check(self) -> None:
        schema.check(self.db, self.store.url)

    # ---- the projector ----

    def catch_up(self, on_batch: Callable[[int, int], None] | None = None, batch_size: int | None = None) -> int:
        """Fold what the log holds beyond the read models (see `Projector.catch_up`); `batch_size` events at most
        per transaction (default the projector's). The first call of a process whose read models are up to date
        looks at the log's head only."""
        if "projector" not in vars(self) and self._past is None and self.store.head() <= self.position():
            return 0
        if batch_size is None:
            return self.projector.catch_up(on_batch)
        return self.projector.catch_up(on_batch, batch_size)

    def rebuild(self, on_batch: Callable[[int, int], None] | None = None) -> int:
        return self.projector.rebuild(on_batch)

    def forget(self) -> None:
        self.projector.forget()

    def position(self, lock: bool = False) -> int:
        return schema.position(self.db, lock)

    def verify(self, key: bytes | None = None, head: "Head | None" = None) -> dict[str, Any]:
        from actorbatch.projections.verification import Verifier

        return Verifier(self.store, self.db, self.projector.archive, key, head).run()

    # ---- the queries ----

    def jobs(self) -> list[dict[str, Any]]:
        return self.queries.jobs()

    def job_states(self) -> list[JobState]:
        return self.queries.job_states()

    def job(self, name: str) -> dict[str, Any] | None:
        return self.queries.job(name)

    def runs(self, *, job: str | None = None, status: str | None = None, now: datetime | None = None,
             since: datetime | None = None, limit: int = 100, after: str | None = None) -> list[Run]:
        return self.queries.runs(job=job, status=status, now=now, since=since, limit=limit, after=after)

    def active_counts(self, now: datetime) -> tuple[int, int, int]:
        return self.queries.active_counts(now)

    def active_runs(self, limit: int, *, started: bool = False) -> list[Run]:
        return self.queries.active_runs(limit, started=started)

    def run(self, run_id: UUID) -> Run | None:
        return self.queries.run(run_id)

    def run_ids(self, prefix: str) -> list[str]:
        return self.queries.run_ids(prefix)

    def logs(self, run_id: UUID, task: str | None = None, after: int = 0) -> list[LogLine]:
        return self.queries.logs(run_id, task, after)

    def audit(self, *, since: datetime | None = None, until: datetime | None = None, job: str | None = None,
              user: str | None = None, limit: int = 1000) -> list[dict[str, str]]:
        return self.queries.audit(since=since, until=until, job=job, user=user, limit=limit)

    def problems(self) -> list[Problem]:
        return self.queries.problems()

    def servers(self) -> list[Server]:
        return self.queries.servers()

    def users(self) -> list[UserState]:
        return self.queries.users()

    def user(self, name: str) -> UserState | None:
        return self.queries.user(name)

    def notifications(self, run_id: UUID) -> list[Notification]:
        return self.queries.notifications(run_id)

    def messages(self, user: str, unread_only: bool = True, limit: int = 1000) -> list[Notification]:
        return self.queries.messages(user, unread_only, limit)

    def deliveries(self) -> list[Notification]:
        return self.queries.deliveries()

    def seed(self) -> Seed:
        """What a starting server reads, in one transaction: the log position the read models reflect, the jobs,
        the active runs, the servers, the open problems, the users and the unfinished deliveries."""
        with self.db.transaction():
            return Seed(self.position(), self.job_states(), self.runs(status="active", limit=10**9), self.servers(),
                        [p for p in self.problems() if p.rested is None], self.users(), self.deliveries())

    def email(self, user: str) -> str | None:
        """The user's e-mail address, if their profile has one."""
        profile = self.user(user)
        return profile.email if profile is not None else None
