"""The Python API, which the CLI is built on: submit and watch work, manage jobs, read the screens.

Commands load what they decide on, decide with the domain, and append; a concurrent writer makes the append fail
with Conflict rather than corrupt anything. Reads bring the read models up to date first, then query them.
"""

import copy
import itertools
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from actorbatch.clock import Clock, SystemClock, random_id, random_secret
from actorbatch.domain.jobs import JobDefinition, JobState
from actorbatch.domain.limits import check_head, check_name, check_time, check_user, show
from actorbatch.domain.notifications import Notification, notification_ids
from actorbatch.domain.quarantine import Problem, fold_stream
from actorbatch.domain.recurrence import Schedule
from actorbatch.domain.rules import Every
from actorbatch.domain.runs import Run
from actorbatch.domain.servers import zone
from actorbatch.domain.statuses import RunStatus
from actorbatch.domain.users import ADMIN
from actorbatch.errors import ActorbatchError, Conflict, InvalidJob, NotFound, StoreFailed
from actorbatch.projections.documents import (
    iso_seconds,
    job_summary,
    message,
    run_detail,
    run_summary,
    servers_document,
    status_document,
)
from actorbatch.projections.queries import LogLine
from actorbatch.projections.rows import iso
from actorbatch.projections.views import Views
from actorbatch.store.eventstore import EventStore
from actorbatch.store.identity import vouched_user
from actorbatch.store.signing import signing_key
from actorbatch.store.sql import SqlDb
from actorbatch.store.urls import default_url, parse_url

if TYPE_CHECKING:
    from actorbatch.node.commands import Commands

W = TypeVar("W")
A = TypeVar("A")
RUN_STATUSES = tuple(status.value for status in RunStatus)
STATUS_ROWS = 10  # rows of each kind on the status screen: it fits one terminal screen under any load
MAX_PENDING = 1_000_000  # pending runs `job remove --force` cancels with the job, at most


def load_job_file(path: str | Path) -> list[JobDefinition]:
    """Every job in a TOML job file, validated; InvalidJob (one line, naming the file) on any problem."""
    import tomllib

    from actorbatch.domain.jobfile import parse_jobs

    path = Path(path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise InvalidJob(f"{path}: cannot read: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise InvalidJob(f"{path}: not valid TOML: {error}") from None
    except UnicodeDecodeError:
        raise InvalidJob(f"{path}: not UTF-8 text") from None
    except RecursionError:
        raise InvalidJob(f"{path}: not valid TOML: nested too deeply") from None
    try:
        return parse_jobs(document)
    except InvalidJob as error:
        raise InvalidJob(f"{path}: {error}") from None


class Job(JobDefinition):
    """A job definition, as `actorbatch.Job.from_toml(path)` reads it."""

    @classmethod
    def from_toml(cls, path: str | Path) -> JobDefinition:
        jobs = load_job_file(path)
        if len(jobs) != 1:
            raise InvalidJob(f"{path}: holds {len(jobs)} jobs; use actorbatch.load_job_file for several")
        return jobs[0]


def init(url: str | None = None, role: str | None = None) -> str:
    """Create (or upgrade) the store's tables; the only operation that does. A new SQLite file is made readable
    and writable by its owner only (0600): whoever can write it can do anything. On PostgreSQL, `role` is set up
    (see `store.roles`) so that its members may append events and read them, never change or delete them."""
    target = parse_url(url or default_url())
    if target.kind == "sqlite" and not os.path.exists(target.path):
        os.close(os.open(target.path, os.O_CREAT | os.O_WRONLY, 0o600))
    store = EventStore(target, create=True)
    db = SqlDb(store.url)
    try:
        Views(store, db).create()
        if role is not None:
            if store.url.kind != "postgresql":
                raise ActorbatchError("--role: roles are PostgreSQL's; a SQLite store is guarded by its file's mode")
            from actorbatch.store import roles

            roles.restrict(store.url, check_name(role, "--role"))
        return str(store.url)
    finally:
        db.close()
        store.close()


def connect(url: str | None = None, user: str | None = None, clock: Clock | None = None) -> "Client":
    """A client of the store at `url`, acting as the user the store vouches for (the database role on PostgreSQL,
    the OS user on SQLite), or as `user` (default `ACTORBATCH_USER`) if that one holds `admin` or the store is
    still open; PermissionDenied otherwise."""
    return Client(url or default_url(), user or os.environ.get("ACTORBATCH_USER") or None, clock or SystemClock())


class Client:
    """One connection to a store, acting as one user."""

    def __init__(self, url: str, user: str | None, clock: Clock) -> None:
        self.url, self.clock = url, clock
        requested = None if user is None else check_user(user, "user")
        self.store = EventStore(url)
        self.views = Views(self.store, SqlDb(self.store.url))
        try:
            self.views.check()
            self.identity = vouched_user(self.views.db)  # who the store can vouch for
            self.user = self.identity if requested is None else requested
            self._commands: Commands | None = None
            if self.user != self.identity and not self.commands.guard.holds(self.identity, ADMIN):
                self.commands.guard.refuse(self.identity, ADMIN, "--user", self.user)
        except BaseException:
            self.close()
            raise
        self.stale: str | None = None  # why the last read may lag the log
        self.reads_catch_up = True  # off where one loop keeps the read models up to date (the web console)

    def as_user(self, user: str) -> "Client":
        """The same store and read models, acting as another user: the web console's logged-in users."""
        other = copy.copy(self)
        other.user = check_user(user, "user")
        other._commands = None
        return other

    @property
    def commands(self) -> "Commands":
        """Made on first use: a listing decides nothing, and need not load what deciding takes."""
        if self._commands is None:
            from actorbatch.node.commands import Commands

            self._commands = Commands(self.store, self.user, self.clock, random_id)
        return self._commands

    def _catch_up(self) -> None:
        if self.reads_catch_up:
            self.catch_up()

    def catch_up(self) -> None:
        """Bring the read models up to date before a read. A store that cannot be written (read-only, disk
        full) still answers reads: from what the read models hold, with a note that they may be behind."""
        try:
            self.views.catch_up()
        except StoreFailed as error:
            self.views.forget()
            self.stale = f"the read models may be behind the log: {error}"

    def close(self) -> None:
        self.views.db.close()
        self.store.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- jobs ----

    def add_job(self, job: JobDefinition, replace: bool = False) -> None:
        self.add_jobs([job], replace)

    def add_jobs(self, jobs: Iterable[JobDefinition], replace: bool = False) -> list[str]:
        """Register jobs in one transaction: all of them or, on any error, none. Returns, per job, whether it was
        `added` or `replaced`."""
        return self._write(lambda: self.commands.add_jobs(jobs, replace))

    def remove_job(self, name: str, *, force: bool = False) -> list[UUID]:
        """Remove the job; one that is quarantined (an event of it cannot be read or folded) is put to rest. A job
        with pending runs (scheduled or running) is refused unless `force`, which cancels them in the same
        transaction; returns the ids of the runs cancelled."""
        self._catch_up()
        pending = [r.id for r in self.views.runs(job=name, status="active", limit=MAX_PENDING)]
        if pending and not force:
            raise ActorbatchError(f"job {name!r} has {len(pending)} pending runs (`run list --job {name}`): cancel "
                                  "them first, or remove it with --force, which cancels them")
        self._write(lambda: self.commands.remove_job(name, cancel=pending))
        return pending

    def schedule(self, name: str, *, restart: bool = False) -> bool:
        """Start the job's schedule (fire times from now on); `restart` also restarts a running one. False if it
        was scheduled already (and not restarted): nothing to do."""
        return self._write(lambda: self.commands.schedule(name, restart=restart))

    def unschedule(self, name: str) -> bool:
        """Stop future runs; fire times while unscheduled never exist, so they are never missed. False if it was
        not scheduled: nothing to do."""
        return self._write(lambda: self.commands.unschedule(name))

    def next_fires(self, name: str, count: int = 5, start: datetime | None = None) -> list[dict[str, str]]:
        """The job's next fire times after `start` (default now), in UTC and in the schedule's zone."""
        job = self._job(name)
        assert job.definition is not None
        if job.definition.schedule is None:
            raise ActorbatchError(f"job {name!r} has no [schedule]")
        schedule = Schedule.from_dict(job.definition.schedule)
        now = self.clock.now()
        scheduled_at = job.scheduled_at or start or now
        after = (start or now) - timedelta(microseconds=1)  # fire times at or after `start`
        if isinstance(schedule.rule, Every) and schedule.start is None:
            after = max(after, scheduled_at)  # `every` counts from the scheduling moment, which is no fire time
        fires = schedule.fires(after, datetime.max.replace(tzinfo=UTC), scheduled_at, count)
        tz = zone(schedule.timezone)
        return [{"utc": iso_seconds(f), "local": f.astimezone(tz).isoformat()} for f in fires]

    def job_zone(self, name: str) -> str:
        """The zone of the job's schedule (UTC without one), in which `--at` times without an offset are read;
        from the log: a write needs no read model."""
        definition = self.commands.job(name).definition
        schedule = definition.schedule if definition is not None else None
        return str(schedule.get("timezone", "UTC")) if schedule else "UTC"

    def _job(self, name: str) -> JobState:
        return self.commands.job(name)

    def jobs(self) -> list[dict[str, Any]]:
        self._catch_up()
        now = self.clock.now()
        return [job_summary(row, now) for row in self.views.jobs()]

    def job(self, name: str) -> dict[str, Any]:
        self._catch_up()
        row = self.views.job(name)
        if row is None:
            raise NotFound(f"no job named {name!r}")
        return {**job_summary(row, self.clock.now()), "definition": row["definition"]}

    # ---- runs ----

    def run_job(self, name: str, params: Mapping[str, Any] | None = None, at: datetime | None = None,
                key: str | None = None) -> UUID:
        """Create a run now, or due at `at` (aware); returns its id. With an idempotency `key`, a repeated submit
        of the same job and key returns the first run's id and creates nothing."""
        return self._write(lambda: self.commands.run_job(name, params, at, key))

    def retry(self, ref: str | UUID, *, everything: bool = False) -> UUID:
        """A new run of a finished run's job version and params; tasks that succeeded (with every task upstream of
        them) keep their outcome and result unless `everything`. Returns the new run's id."""
        run_id = self.resolve_run(ref)
        return self._write(lambda: self.commands.retry(run_id, everything=everything))

    def backfill(self, name: str, start: datetime, end: datetime, *, dry_run: bool = False) -> list[dict[str, Any]]:
        """One run per fire time of the job's schedule in [start, end), with the scheduler's run ids; fire times
        that have a run already are listed with `created` false. `[{"fire_time", "run_id", "created"}]`."""
        found = self._write(lambda: self.commands.backfill(name, start, end, dry_run=dry_run))
        return [{"fire_time": iso_seconds(b.fire_time), "run_id": str(b.run_id), "created": b.created}
                for b in found]

    def run_many(self, name: str, params: Iterable[Mapping[str, Any] | None], at: datetime | None = None
                 ) -> list[UUID]:
        """Bulk submit: one run of `name` per params mapping, all due at `at` (default now), written in one
        transaction (all or none); returns their ids in order."""
        return self._write(lambda: self.commands.run_many(name, params, at))

    def resolve_run(self, ref: str | UUID) -> UUID:
        if isinstance(ref, UUID):
            return ref
        digits = ref.replace("-", "").lower()
        if not re.fullmatch(r"[0-9a-f]{1,32}", digits):
            raise NotFound(f"no run with id {ref!r}: run ids are hexadecimal")
        self._catch_up()
        if len(digits) == 32 and self.views.run(UUID(digits)) is not None:  # a whole id: a key lookup, no scan
            return UUID(digits)
        ids = self.views.run_ids(_dashed(digits)) or self.views.projector.archive.ids(_dashed(digits))
        if not ids:
            raise NotFound(f"no run with id {ref!r}")
        if len(ids) > 1:
            raise ActorbatchError(f"run id prefix {ref!r} is ambiguous; give more characters")
        return UUID(ids[0])

    def _run(self, ref: str | UUID) -> Run:
        from actorbatch.projections import retention

        run_id = self.resolve_run(ref)
        self._catch_up()
        run = self.views.run(run_id) or retention.archived_run(self.views.projector.archive, self.store, run_id)
        if run is None:
            problem = next((p for p in self.views.problems() if p.aggregate_id == run_id), None)
            raise ActorbatchError(problem.line) if problem else NotFound(f"no run with id {ref}")
        return run

    def _run_as_of(self, ref: str | UUID, moment: datetime) -> Run:
        from actorbatch.projections import why

        run_id = self.resolve_run(ref)
        events = list(itertools.takewhile(lambda e: e.timestamp <= moment, why.history(self.views, run_id)))
        if not events:
            raise NotFound(f"run {run_id} did not exist yet at {iso(moment)}")
        return fold_stream(Run, events)

    def _notifications(self, run: Run, archived: bool, as_of: datetime | None) -> list[Notification]:
        """The run's notifications: from the read models, the archive, or as they were at `as_of`."""
        if as_of is not None:
            assert run.definition is not None
            ids = notification_ids(run.id, run.user, run.definition.notify)
            histories = ([e for e in self.store.events(i) if e.timestamp <= as_of] for i in ids)
            return [fold_stream(Notification, events) for events in histories if events]
        if archived:
            from actorbatch.projections import retention

            return retention.archived_notifications(self.views.projector.archive, self.store, run)
        return self.views.notifications(run.id)

    def runs(self, job: str | None = None, status: str | None = None, since: datetime | None = None,
             limit: int = 100, after: str | None = None) -> list[dict[str, Any]]:
        """The process monitor: one row per run, newest due first; `after` (a run id) pages on past that run."""
        if status is not None and status not in RUN_STATUSES:
            raise ActorbatchError(f"--status: expected one of {', '.join(RUN_STATUSES)}, got {status!r}")
        self._catch_up()
        now = self.clock.now()
        return [run_summary(r, now) for r in self.views.runs(job=job, status=status, now=now, since=since,
                                                             limit=limit, after=after)]

    def run(self, ref: str | UUID, as_of: datetime | None = None) -> dict[str, Any]:
        """Run detail: the same data as `run show --json`; `as_of` (aware): as it was then, folded from its
        events up to the first one stamped later."""
        run = self.run_state(ref, as_of)
        now = as_of or self.clock.now()
        archived = self.views.run(run.id) is None
        return {**run_detail(run, now, self._notifications(run, archived, as_of)),
                "retry_of": str(run.retry_of) if run.retry_of else None,
                "retried_by": [str(r) for r in run.retried_by], "archived": archived}

    def run_state(self, ref: str | UUID, as_of: datetime | None = None) -> Run:
        """The run as the domain folds it (its tasks' specs and conditions: the web console draws its graph)."""
        return self._run(ref) if as_of is None else self._run_as_of(ref, as_of)

    def explain(self, ref: str | UUID, task: str | None = None, cite: bool = False) -> dict[str, list[Any]]:
        """Why each task ran, waited, was skipped or retried: sentences from the run's state; with `cite`, every
        reason (the servers' and the schedule's too) as `{"text", "events": [{"subject", "version", "action",
        "at"}]}`. The full id of a fire time the overlap policy skipped explains that skip, a job's name its
        schedule."""
        from actorbatch.domain.explain import explain
        from actorbatch.projections import why

        try:
            run = self._run(ref)
        except NotFound:
            self._catch_up()
            skip = why.fire(self.views, UUID(str(ref))) if re.fullmatch(r"[0-9a-fA-F-]{32,36}", str(ref)) else None
            found = [skip] if skip is not None else why.job(self.views, str(ref), self.clock.now())
            if not found:
                raise
            return {"fire" if skip else "job": [r.to_dict() if cite else r.text for r in found]}
        if task is not None and task not in run.tasks:
            raise NotFound(f"run {run.id} has no task {task!r}")
        if not cite:
            return dict(explain(run, task))
        return {name: [r.to_dict() for r in found]
                for name, found in why.why(self.views, run, self.clock.now(), task).items()}

    def logs(self, ref: str | UUID, task: str | None = None, after: int = 0) -> list[LogLine]:
        """The run log, after log position `after`: (position, task, attempt, at, line) per line, in order."""
        run = self._run(ref)
        if task is not None and task not in run.tasks:
            raise NotFound(f"run {run.id} has no task {task!r}")
        if self.views.run(run.id) is None:  # archived
            from actorbatch.projections import retention

            return retention.archived_logs(self.views.projector.archive, self.store, run, task, after)
        return self.views.logs(run.id, task, after)

    def cancel(self, ref: str | UUID) -> UUID:
        """Cancel the run; returns its full id. A quarantined run (an event of it cannot be read or folded) is
        put to rest: the cancellation follows its last stored event."""
        run_id = self.resolve_run(ref)
        self.commands.cancel(run_id)
        return run_id

    def wait(self, ref: str | UUID, timeout: float | None = None, poll_s: float = 0.05) -> dict[str, Any]:
        """Block until the run is complete; returns its detail. TimeoutError if `timeout` seconds pass first."""
        run_id = self.resolve_run(ref)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            detail = self.run(run_id)
            if detail["status"] in ("succeeded", "failed", "cancelled"):
                return detail
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"run {run_id} is still {detail['status']} after {timeout:g}s")
            time.sleep(poll_s)

    # ---- users ----

    def users(self) -> list[dict[str, Any]]:
        """`user list --json`: `[{"name", "privileges", "email"}]`, every user with a record, by name."""
        self._catch_up()
        return [u.profile() for u in self.views.users()]

    def user_profile(self, name: str) -> dict[str, Any]:
        """One user's `{"name", "privileges", "email"}` as the log has it now (empty for a user with no record)."""
        return self.commands.guard.record(check_user(name, "user")).profile()

    def set_email(self, name: str, email: str | None) -> None:
        self._write(lambda: self.commands.users.set_email(name, email))

    def grant(self, name: str, privileges: Iterable[str]) -> None:
        self._write(lambda: self.commands.users.grant(name, privileges))

    def revoke(self, name: str, privileges: Iterable[str]) -> None:
        self._write(lambda: self.commands.users.revoke(name, privileges))

    def issue_token(self, name: str | None = None) -> str:
        """A new API token for `name` (default: the acting user), revoking the previous one; shown only now."""
        return self._write(lambda: self.commands.users.issue_token(name or self.user, random_secret(),
                                                                   random_secret()))

    def token_user(self, token: str) -> str | None:
        """The user whose current API token `token` is, or None."""
        from actorbatch.node.users import token_user

        return token_user(self.commands.guard, token)

    # ---- system messages ----

    def messages(self, all_messages: bool = False, limit: int = 1000) -> list[dict[str, Any]]:
        """The acting user's system messages (unread ones; with `all_messages`, read ones after them), newest
        first; reading them marks them read."""
        self._catch_up()
        shown = self.views.messages(self.user, unread_only=not all_messages, limit=limit)
        if any(not m.read for m in shown):
            self.commands.read_messages(m for m in shown if not m.read)
        return [message(m) for m in shown]

    # ---- servers and the status screen ----

    def servers(self) -> list[dict[str, Any]]:
        self._catch_up()
        return servers_document(self.views, self.clock.now())

    def drain(self, server: str) -> None:
        """Ask a running server to finish what it runs, take nothing new, and stop (exit 0)."""
        if not any(s["name"] == server and s["alive"] for s in self.servers()):
            raise NotFound(f"no live server named {server!r}")
        self._write(lambda: self.commands.drain(server))

    def status(self, rows: int = STATUS_ROWS, as_of: datetime | None = None) -> dict[str, Any]:
        """The status screen, bounded whatever the load: counts, and at most `rows` of each kind, the most
        relevant first (jobs firing soonest, started runs then the earliest due, live servers); `as_of` (aware):
        as it was then, rebuilt from the log (see projections.past)."""
        if as_of is None:
            self._catch_up()
            return status_document(self.views, self.clock.now(), rows)
        past = self.views.as_of(as_of)
        try:
            return status_document(past, as_of, rows)
        finally:
            past.db.close()

    def problems(self, *, rested: bool = False) -> list[Problem]:
        """Aggregates quarantined because an event of theirs cannot be read or folded (with `rested`, also those
        an ordinary command has put to rest since)."""
        self._catch_up()
        return [p for p in self.views.problems() if rested or p.rested is None]

    def audit(self, since: datetime | None = None, until: datetime | None = None, job: str | None = None,
              user: str | None = None, limit: int = 1000) -> list[dict[str, str]]:
        """The audit trail: `[{"at", "user", "action", "subject"}]`, oldest first."""
        self._catch_up()
        return self.views.audit(since=since, until=until, job=job, user=user, limit=limit)

    def verify(self, head: str | None = None) -> dict[str, Any]:
        """Check the whole log (see projections.verification): its seals, each aggregate's versions, the head
        digest `head` (from `audit head`) if given, and, with ACTORBATCH_SIGNING_KEY set, its signatures. Not ok
        if any check finds something, or while an aggregate is quarantined. Writes nothing."""
        from actorbatch.projections.verification import Head

        expected = Head(*check_head(head, "--head")) if head is not None else None
        result = self.views.verify(signing_key(), expected)
        problems = self.views.problems()
        return {"ok": not result["findings"] and all(p.rested is not None for p in problems), **result,
                "problems": [p.to_dict() for p in problems]}

    def rebuild_projections(self, on_batch: Any = None) -> int:
        return self.views.rebuild(on_batch)

    def _write(self, command: Callable[[], W]) -> W:
        try:
            return command()
        except Conflict:
            raise Conflict("another user changed the same thing at the same moment; try again") from None


def _dashed(digits: str) -> str:
    """A run id's leading hex digits as the id writes them, dashes in place: `73bc15b1fa84` -> `73bc15b1-fa84`."""
    return "-".join(digits[start:end] for start, end in ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))
                    if digits[start:end])


def parse_time(text: str, tz_name: str = "UTC", field: str = "time") -> datetime:
    """ISO 8601 from the command line, within the limits every time keeps; without an offset it is in `tz_name`."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidJob(f"{field}: expected ISO 8601, e.g. 2026-12-01T02:00:00, got {show(text)}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone(tz_name))
    return check_time(moment, field)

