"""The projector: keeps the read models up to date by folding the log.

Each catch-up reads the log from the last position it recorded, folds the new events with the domain's own
aggregates (so a read model can never disagree with what the servers decided) and writes the touched rows and the
new position in one transaction. Dropping the tables and catching up from position 0 rebuilds them exactly. Each
batch also seals the events it folds for the first time (see `seals`), and aggregates that cannot be folded or
written are quarantined.
"""

import bisect
import contextlib
import functools
import gc
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from actorbatch.domain.events import Event, job_id
from actorbatch.domain.jobs import JobAdded, JobEvent, JobState
from actorbatch.domain.notifications import Notification, NotificationEvent, NotificationQueued
from actorbatch.domain.quarantine import Problem, Quarantine
from actorbatch.domain.runs import FireSkipped, LogWritten, Run, RunCreated, RunEvent
from actorbatch.domain.servers import DrainRequested, Server, ServerEvent, ServerStarted
from actorbatch.domain.users import AccessDenied, UserEvent, UserState
from actorbatch.projections import schema, snapshots
from actorbatch.projections.queries import Queries
from actorbatch.projections.rows import RunRows, codec, definition_key, iso, run_blob, text
from actorbatch.projections.seals import Sealer
from actorbatch.projections.snapshots import Snapshots
from actorbatch.store.archive import Archive
from actorbatch.store.eventstore import EventStore
from actorbatch.store.sql import SqlDb

if TYPE_CHECKING:
    from actorbatch.projections.past import Past

BATCH = 20_000  # events per incremental catch-up, at most: each batch writes every run it touches whole, so a wide
# run's row is encoded once per batch; small batches made a lagging projector re-encode it thousands of times
REBUILD_BATCH = 50_000
SEGMENT = 5_000  # events folded between two looks at the snapshots due and two moves of the progress
MAX_OPEN_RUNS = 20_000  # bigger when rebuilding: fewer runs straddle two batches


class Projector:
    """Catches the read models up with the log, sealing what it folds, and rebuilds them."""

    def __init__(self, store: EventStore, db: SqlDb, rows: RunRows, queries: Queries,
                 past: "Past | None" = None) -> None:
        self.store, self.db, self.rows, self.queries = store, db, rows, queries
        self.archive = Archive(db)
        self.past = past  # set: a scratch copy of the read models as they were at a past moment (see `past`)
        # Open runs as this process last wrote them, valid while the position is where it left it: the next
        # catch-up folds into them instead of reading and decoding their rows again.
        self._open_runs: dict[UUID, Run] = {}
        self._open_runs_at = -1
        self.sealer = Sealer(store, db, self.archive)
        self.snapshots = Snapshots(db)

    def forget(self) -> None:
        """After a catch-up failed half-way (the database went away): what this process believes the read models
        hold may not have been written, so it is read from them again."""
        self.rows.definitions.clear()
        self.snapshots.forget()
        self._open_runs_at = -1

    def position(self, lock: bool = False) -> int:
        """The log position the read models reflect; `lock` holds it until the transaction ends (PostgreSQL)."""
        return schema.position(self.db, lock)

    def catch_up(self, on_batch: Callable[[int, int], None] | None = None, batch_size: int = BATCH) -> int:
        """Fold every event recorded since the last catch-up; returns how many were applied.

        Reading and folding happen outside any transaction, so writers of the log never wait on a read model; the
        write then moves the position from where the fold started, and if another catch-up moved it first (another
        process, say), this one folds again from there. A batch is folded in segments of at most SEGMENT events,
        each ending where a snapshot is due (taken from the folded state, see `_snapshot`) or the progress moves.
        """
        applied = 0
        while True:
            position = self.position()
            if position != self._open_runs_at:
                self._open_runs.clear()  # someone else moved the read models on: our copies may be stale
                self.snapshots.forget()
            quarantine = Quarantine(self.queries.problems())
            fold, ended = _Fold(), False
            if self.past is None:
                self._read_and_fold(fold, position, batch_size, quarantine, on_batch)
            else:
                fold.notes = self.past.read(self.store, position, batch_size)
                fold.batch, ended = self.past.decode(fold.notes, self.store.decode)
                self._fold_batch(fold.batch, quarantine, fold.changes)
            notes, batch = fold.notes, fold.batch
            if not notes:
                return applied
            changes = (*fold.changes, self._run_rows(fold.changes[1], quarantine, fold.encoded))  # encoded before
            # the write lock is taken: a wide run's row is megabytes
            seals = self.sealer.seals(position, notes) if self.past is None else []
            with self.db.transaction():
                if self.position(lock=True) != position:
                    self._open_runs_at = -1
                    continue
                self._write_isolated(changes, quarantine)
                self._write_problems(quarantine.found)
                self.db.execute("UPDATE ab_position SET position = ? WHERE name = 'views'", (batch[-1][0],))
                if self.past is None:
                    self.sealer.write(seals)
                    self.snapshots.write(fold.taken)
            self._keep_open(changes[1], batch[-1][0])
            applied += len(batch)
            if on_batch:
                on_batch(batch[-1][0], self.store.head())
            if ended:
                return applied

    def _read_and_fold(self, fold: "_Fold", position: int, batch_size: int, quarantine: Quarantine,
                       on_batch: Callable[[int, int], None] | None) -> None:
        """Read up to `batch_size` events after `position` and fold them, SEGMENT events at a time, taking the
        snapshots due on their positions; a big batch (a rebuild's) reports its progress as it goes."""
        after = position
        while len(fold.batch) < batch_size:
            notes = self.store.read_raw(after, min(SEGMENT, batch_size - len(fold.batch)))
            if not notes:
                return
            chunk = list(zip([note.id for note in notes], self.store.decode_many(notes), strict=True))
            self._fold_segments(fold, chunk, quarantine)
            fold.notes.extend(notes)
            fold.batch.extend(chunk)
            after = notes[-1].id
            if on_batch and batch_size > SEGMENT:
                on_batch(after, self.store.head())

    def _fold_segments(self, fold: "_Fold", chunk: list[tuple[int, Event]], quarantine: Quarantine) -> None:
        """Fold `chunk` into `fold`, cut where snapshots are due, and take them."""
        positions = [p for p, _ in chunk]
        start = 0
        while start < len(chunk):
            end = min(len(chunk), bisect.bisect_left(positions, self.snapshots.next_due(), start) + 1)
            segment = chunk[start:end]
            self._fold_batch(segment, quarantine, fold.changes)
            touched = {event.originator_id for _, event in segment if isinstance(event, RunEvent)}
            fold.dirty |= touched
            runs = fold.changes[1]
            for run_id in touched:  # a run that ended is encoded now, not all at the end of the batch
                run = runs.get(run_id)
                if run is not None and (run.complete or run.cancelled):
                    _encoded(fold.encoded, run)
            moment = max(event.timestamp for _, event in segment)
            fold.latest = moment if fold.latest is None or moment > fold.latest else fold.latest
            if positions[end - 1] >= self.snapshots.next_due():
                if not fold.base:
                    fold.base = snapshots.copied(self.db)
                    fold.tables = {table: dict(rows) for table, rows in fold.base.items()}
                self._snapshot(fold, quarantine)
                tables = {table: list(rows.values()) for table, rows in fold.tables.items()}
                fold.taken.append(self.snapshots.take(positions[end - 1], fold.latest, tables))
                fold.dirty.clear()
            start = end

    def rebuild(self, on_batch: Callable[[int, int], None] | None = None) -> int:
        """Rebuild every read model from the log. They are built in temporary tables of the same names, which
        hide the real ones from this connection only, and copied over them in one transaction at the end: until
        then, and for good if the rebuild fails, every other reader sees the old read models."""
        self._forget()
        collecting = gc.isenabled()
        gc.disable()  # the fold makes millions of objects and frees them by reference counts: the cycle collector
        # walked the batch's aggregates over and over, a quarter of the time
        try:
            with schema.roomy(self.db):
                schema.create_temporary(self.db)
                applied = self.catch_up(on_batch, REBUILD_BATCH)
                schema.swap_in(self.db)
        finally:
            if collecting:
                gc.enable()
            self.db.reconnect()  # the temporary tables go with this connection
            self._forget()
        return applied

    def _forget(self) -> None:
        """Drop what this process remembers of the rows, which a rebuild replaces."""
        self.rows.definitions.clear()
        self.snapshots.forget()
        self._open_runs.clear()
        self._open_runs_at = -1

    def _keep_open(self, runs: dict[UUID, Run], position: int) -> None:
        if len(self._open_runs) > MAX_OPEN_RUNS:
            self._open_runs.clear()
        for run_id, run in runs.items():
            if run.complete or run.cancelled:
                self._open_runs.pop(run_id, None)
            else:
                self._open_runs[run_id] = run
        self._open_runs_at = position

    def _fold_batch(self, batch: Iterable[tuple[int, Event]], quarantine: Quarantine,
                    changes: tuple[Any, ...]) -> None:
        """Fold a batch into `changes` (see `_empty_changes`): the aggregates it touches, folded to their new
        state, and its log lines and audit rows; the aggregates that cannot be folded are quarantined, and keep the
        state last written."""
        jobs: dict[UUID, JobState]
        runs: dict[UUID, Run]
        servers: dict[UUID, Server]
        users: dict[UUID, UserState]
        notifications: dict[UUID, Notification]
        logs: list[tuple[Any, ...]]
        audit: list[tuple[Any, ...]]
        jobs, runs, servers, users, notifications, logs, audit = changes
        for position, event in batch:
            if not quarantine.admit(event, position):
                continue
            if isinstance(event, LogWritten):
                times = event.times or (event.timestamp,) * len(event.lines)  # version 1 events: when shipped
                logs.append((str(event.run_id), event.task, event.attempt, position,
                             codec.encode({"lines": event.lines, "times": times})))
                continue
            if isinstance(event, RunCreated | FireSkipped) and event.fire_time is not None:
                name = event.job if isinstance(event, FireSkipped) else event.definition["name"]
                job = jobs.get(job_id(name)) or jobs.setdefault(job_id(name), self._load_job(job_id(name)))
                job.fired(event.fire_time, event.reason if isinstance(event, FireSkipped) else None)
            if isinstance(event, RunEvent):
                self._fold(runs, event, RunCreated, Run, self._load_run, quarantine, position)
            elif isinstance(event, JobEvent):
                self._fold(jobs, event, JobAdded, JobState, self._load_job, quarantine, position)
            elif isinstance(event, ServerEvent):
                self._fold(servers, event, ServerStarted, Server, self._load_server, quarantine, position)
            elif isinstance(event, UserEvent):
                self._fold(users, event, UserEvent, functools.partial(UserState.named, event.name),
                           functools.partial(self._load_user, event.name), quarantine, position)
            elif isinstance(event, NotificationEvent):
                self._fold(notifications, event, NotificationQueued, Notification, self.queries.notification,
                           quarantine, position)
            user = getattr(event, "user", None)
            if user is not None:  # a person's action: the audit trail of who did what
                audit.append(_audit_row(position, event, user, jobs, runs))

    @staticmethod
    def _snapshot(fold: "_Fold", quarantine: Quarantine) -> None:
        """Bring the rows a snapshot copies (`fold.tables`) up to what the fold holds now (`fold.dirty` names the
        runs folded since they were last brought up): the folded aggregates' rows over those written before the
        batch (`fold.base`). An aggregate that is quarantined, or whose row cannot be made, keeps its written row
        here (the write quarantines the latter)."""
        tables, base, changes, dirty, encoded = fold.tables, fold.base, fold.changes, fold.dirty, fold.encoded
        jobs, runs, servers = changes[0], changes[1], changes[2]
        open_runs, definitions = tables["ab_runs"], tables["ab_definitions"]
        for run_id in dirty:
            key = text(run_id)
            run = runs.get(run_id)
            row = None if run is None or run.complete or run.cancelled else _encoded(encoded, run)
            if row is not None:
                open_runs[key] = [row[0], row[1], str(row[2]), *row[3:]]
                if run is not None and run.definition is not None and definition_key(run) not in definitions:
                    definitions[definition_key(run)] = [definition_key(run), codec.encode(run.definition.to_dict())]
            elif run is not None and (run.complete or run.cancelled):
                open_runs.pop(key, None)
            elif key in base["ab_runs"]:
                open_runs[key] = base["ab_runs"][key]
            else:
                open_runs.pop(key, None)
        tables["ab_jobs"], tables["ab_servers"] = dict(base["ab_jobs"]), dict(base["ab_servers"])
        for job in jobs.values():
            if job.definition is not None:
                with contextlib.suppress(Exception):
                    tables["ab_jobs"][job.definition.name] = [job.definition.name, str(job.id),
                                                              codec.encode(job.to_dict())]
        for server in servers.values():
            with contextlib.suppress(Exception):
                tables["ab_servers"][server.name] = [server.name, codec.encode(vars(server))]
        for p in quarantine.found:
            tables["ab_problems"][str(p.aggregate_id)] = [str(p.aggregate_id), p.kind, p.version, p.position,
                                                          p.reason, p.rested, p.rest]

    def _write(self, jobs: dict[UUID, JobState], runs: dict[UUID, Run], servers: dict[UUID, Server],
               users: dict[UUID, UserState], notifications: dict[UUID, Notification], logs: list[tuple[Any, ...]],
               audit: list[tuple[Any, ...]],
               rows: dict[UUID, tuple[Any, ...]]) -> None:
        """Write a batch's rows; `rows`: the runs' `ab_runs` rows, encoded beforehand."""
        self.db.executemany("INSERT INTO ab_audit (position, at, username, action, subject, job) "
                            "VALUES (?, ?, ?, ?, ?, ?)", audit)
        new_definitions = {}
        for run in runs.values():
            key = definition_key(run)
            if key not in self.rows.definitions:
                assert run.definition is not None
                self.rows.definitions[key] = new_definitions[key] = run.definition
        self.db.executemany("INSERT INTO ab_definitions (key, data) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                            [(k, codec.encode(d.to_dict())) for k, d in new_definitions.items()])
        self.db.executemany(
            "INSERT INTO ab_runs (id, job, status, due_at, started_at, ended_at, data) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET status = excluded.status, started_at = excluded.started_at, "
            "ended_at = excluded.ended_at, data = excluded.data", [rows[run_id] for run_id in runs])
        self.db.executemany(
            "INSERT INTO ab_jobs (name, id, data) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET id = excluded.id, data = excluded.data",
            [(j.definition.name, str(j.id), codec.encode(j.to_dict())) for j in jobs.values()
             if j.definition is not None])
        self.db.executemany(
            "INSERT INTO ab_servers (name, data) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET data = excluded.data",
            [(s.name, codec.encode(vars(s))) for s in servers.values()])
        self.db.executemany(
            "INSERT INTO ab_users (name, data) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET data = excluded.data",
            [(u.name, codec.encode(u.to_dict())) for u in users.values()])
        self.db.executemany(
            "INSERT INTO ab_notifications (id, run_id, owner, channel, queued_at, is_read, status, data) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET is_read = excluded.is_read, "
            "status = excluded.status, data = excluded.data",
            [(str(n.id), str(n.run_id), n.owner, n.channel, iso(n.queued_at), int(n.read), n.status,
              codec.encode(n.to_dict())) for n in notifications.values()])
        self.db.executemany("INSERT INTO ab_logs (run_id, task, attempt, position, lines) VALUES (?, ?, ?, ?, ?)",
                            logs)

    @staticmethod
    def _run_rows(runs: dict[UUID, Run], quarantine: Quarantine,
                  encoded: dict[UUID, tuple[int, tuple[Any, ...]]]) -> dict[UUID, tuple[Any, ...]]:
        """The runs' rows, encoded (or as a snapshot of this batch encoded them, if the run has not changed
        since); a run whose row cannot be made (a time no read model can show, say) is quarantined and dropped
        from `runs`."""
        rows: dict[UUID, tuple[Any, ...]] = {}
        for run_id, run in list(runs.items()):
            made = encoded.get(run_id)
            if made is not None and made[0] == run.version:
                rows[run_id] = made[1]
                continue
            encode = functools.partial(_encode_into, rows, run)
            if not quarantine.guard("run", run_id, run.version, encode, "cannot be written to the read models"):
                del runs[run_id]
        return rows

    def _write_isolated(self, changes: tuple[Any, ...], quarantine: Quarantine) -> None:
        """Write a batch's rows; if that fails, write them aggregate by aggregate and quarantine those whose rows
        cannot be made (a time no read model can show, say), so one bad aggregate does not stop the others."""
        with contextlib.suppress(Exception):  # one aggregate's rows cannot be made: find it below
            self._write_saved(changes)
            return
        self._write_saved(({}, {}, {}, {}, {}, *changes[5:]))  # log lines, audit rows (and the encoded runs, unused)
        for index, kind in enumerate(("job", "run", "server", "user", "notification")):
            for key, aggregate in list(changes[index].items()):
                alone: list[Any] = [{}, {}, {}, {}, {}, [], [], changes[7]]
                alone[index] = {key: aggregate}
                if not quarantine.guard(kind, key, aggregate.version, functools.partial(self._write_saved, alone),
                                        "cannot be written to the read models"):
                    del changes[index][key]

    def _write_saved(self, changes: Sequence[Any]) -> None:
        """`_write` under a savepoint: if it fails, nothing of it stays written, nor remembered as written."""
        try:
            with self.db.savepoint():
                self._write(*changes)
        except Exception:
            self.rows.definitions.clear()
            raise

    def _write_problems(self, problems: Iterable[Problem]) -> None:
        self.db.executemany(
            "INSERT INTO ab_problems (aggregate_id, kind, version, position, reason, rested, rest) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (aggregate_id) DO UPDATE SET kind = excluded.kind, "
            "version = excluded.version, position = excluded.position, reason = excluded.reason, "
            "rested = excluded.rested, rest = excluded.rest",
            [(str(p.aggregate_id), p.kind, p.version, p.position, p.reason, p.rested, p.rest) for p in problems])

    @staticmethod
    def _fold(cache: dict[UUID, Any], event: Event, first: type, factory: Callable[[], Any],
              load: Callable[[UUID], Any], quarantine: Quarantine, position: int) -> None:
        aggregate = cache.get(event.originator_id)
        if aggregate is None:
            aggregate = factory() if isinstance(event, first) and event.originator_version == 1 else \
                load(event.originator_id)
            if aggregate is None:
                return  # quarantined before the read models ever held it: nothing to put to rest
            cache[event.originator_id] = aggregate
        # A row read after another catch-up moved on is ahead of our position: its events are in it already, and
        # our write will lose the CAS. A fold that raised may have left the aggregate half changed: not written.
        if event.originator_version > aggregate.version and not quarantine.apply(aggregate, event, position):
            del cache[event.originator_id]

    def _load_run(self, run_id: UUID) -> Run | None:
        cached = self._open_runs.pop(run_id, None)  # popped: a failed write must not leave it half-folded
        if cached is not None:
            return cached
        rows = self.db.query("SELECT data FROM ab_runs WHERE id = ?", (str(run_id),))
        return self.rows.run(rows[0][0]) if rows else None

    def _load_job(self, job_uuid: UUID) -> JobState:
        rows = self.db.query("SELECT data FROM ab_jobs WHERE id = ?", (str(job_uuid),))
        return JobState.from_dict(codec.decode(rows[0][0])) if rows else JobState()

    def _load_user(self, name: str, _uid: UUID) -> UserState | None:
        return self.queries.user(name)

    def _load_server(self, sid: UUID) -> Server:
        for (data,) in self.db.query("SELECT data FROM ab_servers"):
            state = codec.decode(data)
            if state["id"] == sid:
                server = Server()
                vars(server).update(state)
                return server
        return Server()


def _audit_row(position: int, event: Event, user: str, jobs: dict[UUID, JobState],
               runs: dict[UUID, Run]) -> tuple[Any, ...]:
    """(position, at, user, action, subject, job): the subject is the job name, or the run id for run actions."""
    if isinstance(event, JobEvent):
        job = jobs.get(event.originator_id)  # absent if quarantined
        name = job.definition.name if job and job.definition else ""
        return position, iso(event.timestamp), user, event.action, name, name
    if isinstance(event, DrainRequested):
        return position, iso(event.timestamp), user, event.action, event.server, ""
    if isinstance(event, UserEvent):
        return position, iso(event.timestamp), user, event.action, event.name, ""
    if isinstance(event, AccessDenied):
        subject = f"{event.attempted} {event.subject}: lacks {event.privilege}".replace("  ", " ")
        return position, iso(event.timestamp), user, event.action, subject, event.job
    if not isinstance(event, RunEvent):
        return position, iso(event.timestamp), user, event.action, "", ""
    run = runs.get(event.originator_id)
    name = run.job if run and run.definition else ""
    return position, iso(event.timestamp), user, event.action, text(event.originator_id), name


def _encode_into(rows: dict[UUID, tuple[Any, ...]], r: Run) -> None:
    """Add the `ab_runs` row of a run, encoded."""
    rows[r.id] = (text(r.id), r.job, r.status(r.created_at or _never()), iso(r.due_at), iso(r.started_at),
                  iso(r.ended_at), run_blob(r))


def _encoded(encoded: dict[UUID, tuple[int, tuple[Any, ...]]], run: Run) -> tuple[Any, ...] | None:
    """The run's row as a snapshot copies it, kept by version for the next snapshot and the write; None if it
    cannot be made."""
    made = encoded.get(run.id)
    if made is not None and made[0] == run.version:
        return made[1]
    rows: dict[UUID, tuple[Any, ...]] = {}
    try:
        _encode_into(rows, run)
    except Exception:  # noqa: BLE001 - the write quarantines it
        return None
    encoded[run.id] = (run.version, rows[run.id])
    return rows[run.id]


class _Fold:
    """What one batch read and folded: its notifications and events, what it changes (jobs, runs, servers, users
    and notifications by id, log and audit rows), the run rows made for its snapshots (by version), and those
    snapshots, with the rows they copy as written before the batch (`base`) and as they stand at the last one."""

    def __init__(self) -> None:
        self.notes: list[Any] = []
        self.batch: list[tuple[int, Event]] = []
        self.changes: tuple[Any, ...] = ({}, {}, {}, {}, {}, [], [])
        self.encoded: dict[UUID, tuple[int, tuple[Any, ...]]] = {}
        self.taken: list[tuple[Any, ...]] = []
        self.base: dict[str, dict[Any, list[Any]]] = {}
        self.tables: dict[str, dict[Any, list[Any]]] = {}
        self.dirty: set[UUID] = set()  # the runs folded since the last snapshot
        self.latest: datetime | None = None  # the latest event time folded


def _never() -> datetime:
    return datetime.min.replace(tzinfo=UTC)
