"""The read models' tables: their DDL, creating them (`actorbatch init`) and checking a store has them."""

import contextlib
from collections.abc import Iterator

from actorbatch.projections.seals import SCHEMA as SEALS
from actorbatch.projections.snapshots import SCHEMA as SNAPSHOTS
from actorbatch.store import archive
from actorbatch.store.eventstore import NotInitialised
from actorbatch.store.sql import SqlDb

TABLES = ("ab_position", "ab_jobs", "ab_runs", "ab_definitions", "ab_servers", "ab_logs", "ab_audit",
          "ab_problems", "ab_users", "ab_snapshots", "ab_notifications")  # rebuilt
ALL_TABLES = (*TABLES, "ab_seals")  # the seals are kept by a rebuild, and so is the archive
# Aggregates a reader quarantined (see domain.quarantine). Newer than the first store format, so opening a store
# creates it (and the seals and snapshots) if it is missing: an older store needs no `init` for it.
PROBLEMS = ("CREATE TABLE IF NOT EXISTS ab_problems (aggregate_id TEXT PRIMARY KEY, kind TEXT NOT NULL, "
            "version BIGINT NOT NULL, position BIGINT, reason TEXT NOT NULL, rested BIGINT, rest TEXT NOT NULL)")
USERS = "CREATE TABLE IF NOT EXISTS ab_users (name TEXT PRIMARY KEY, data BLOB NOT NULL)"
# Notifications of completed runs: system messages, e-mails, webhooks. Newer than the first store format too.
NOTIFICATIONS = (
    "CREATE TABLE IF NOT EXISTS ab_notifications (id TEXT PRIMARY KEY, run_id TEXT NOT NULL, owner TEXT NOT NULL, "
    "channel TEXT NOT NULL, queued_at TEXT NOT NULL, is_read INTEGER NOT NULL, status TEXT NOT NULL, "
    "data BLOB NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ab_notifications_run ON ab_notifications (run_id)",
    "CREATE INDEX IF NOT EXISTS ab_notifications_inbox ON ab_notifications (owner, channel, is_read, queued_at)",
    "CREATE INDEX IF NOT EXISTS ab_notifications_status ON ab_notifications (status)",
)
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS ab_position (name TEXT PRIMARY KEY, position BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ab_jobs (name TEXT PRIMARY KEY, id TEXT NOT NULL, data BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ab_runs (id TEXT PRIMARY KEY, job TEXT NOT NULL, status TEXT NOT NULL, "
    "due_at TEXT NOT NULL, started_at TEXT, ended_at TEXT, data BLOB NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ab_runs_job ON ab_runs (job, due_at)",
    "CREATE INDEX IF NOT EXISTS ab_runs_status ON ab_runs (status, due_at)",
    "CREATE INDEX IF NOT EXISTS ab_runs_due ON ab_runs (due_at)",
    "CREATE TABLE IF NOT EXISTS ab_audit (position BIGINT PRIMARY KEY, at TEXT NOT NULL, username TEXT NOT NULL, "
    "action TEXT NOT NULL, subject TEXT NOT NULL, job TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ab_audit_at ON ab_audit (at)",
    "CREATE INDEX IF NOT EXISTS ab_audit_subject ON ab_audit (subject)",  # a prune drops an archived run's rows
    SEALS,
    SNAPSHOTS,
    "CREATE TABLE IF NOT EXISTS ab_definitions (key TEXT PRIMARY KEY, data BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ab_servers (name TEXT PRIMARY KEY, data BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ab_logs (run_id TEXT NOT NULL, task TEXT NOT NULL, attempt INTEGER NOT NULL, "
    "position BIGINT NOT NULL, lines BLOB NOT NULL, PRIMARY KEY (run_id, position))",
    PROBLEMS,
    USERS,
    *NOTIFICATIONS,
)
NEWER = {"ab_problems": (PROBLEMS,), "ab_seals": (SEALS,), "ab_users": (USERS,), "ab_snapshots": (SNAPSHOTS,),
         "ab_notifications": NOTIFICATIONS}
REBUILD_CACHE_KIB = 256 * 1024  # per schema, only while rebuilding
START = "INSERT INTO ab_position (name, position) VALUES ('views', 0) ON CONFLICT (name) DO NOTHING"


def create(db: SqlDb) -> None:
    for statement in (*SCHEMA, *archive.SCHEMA):
        db.execute(statement)
    db.execute(START)


def check(db: SqlDb, url: object) -> None:
    """Every read model table exists (a store made by an older version needs `actorbatch init` first, but for the
    newer tables, made here)."""
    for table in ALL_TABLES:
        if _exists(db, table):
            continue
        if table in NEWER:
            for statement in NEWER[table]:
                db.execute(statement)
            continue
        db.close()
        raise NotInitialised(f"store {url} lacks table {table}: run `actorbatch init` "
                             "(then `actorbatch projections rebuild`)")
    if not _exists(db, archive.TABLE):  # newer than the first store format too: made on first use
        for statement in archive.SCHEMA:
            db.execute(statement)


def position(db: SqlDb, lock: bool = False) -> int:
    """The log position the read models reflect; `lock` holds it until the transaction ends (PostgreSQL)."""
    suffix = " FOR UPDATE" if lock and db.dialect == "postgresql" else ""
    rows = db.query("SELECT position FROM ab_position WHERE name = 'views'" + suffix)  # noqa: S608
    return int(rows[0][0]) if rows else 0


def create_temporary(db: SqlDb) -> None:
    """The rebuilt tables as temporary tables of the same names, which hide the real ones from this connection."""
    for statement in SCHEMA:
        if statement.startswith("CREATE TABLE") and _table_of(statement) in TABLES:
            db.execute(statement.replace("CREATE TABLE IF NOT EXISTS", "CREATE TEMP TABLE", 1))
    # Without other indexes, which the copy into the real tables fills: the snapshots read the open runs.
    if db.dialect == "sqlite":
        db.execute("CREATE INDEX temp.ab_rebuilt_runs_status ON ab_runs (status)")
    else:
        db.execute("CREATE INDEX ab_rebuilt_runs_status ON pg_temp.ab_runs (status)")
    db.execute(START)


def schemas(db: SqlDb) -> tuple[str, str]:
    """The schema of the real tables and that of this connection's temporary ones."""
    if db.dialect == "sqlite":
        return "main", "temp"
    return str(db.query("SELECT current_schema()")[0][0]), "pg_temp"


@contextlib.contextmanager
def roomy(db: SqlDb) -> Iterator[None]:
    """While rebuilding on SQLite: a bigger page cache for the temporary tables and the real ones, whose index
    inserts (random ids) otherwise read the same pages over and over, a third of the copy's time; as before after."""
    if db.dialect != "sqlite":
        yield
        return
    before = {schema: int(db.query(f"PRAGMA {schema}.cache_size")[0][0]) for schema in ("main", "temp")}
    for schema in before:
        db.execute(f"PRAGMA {schema}.cache_size = {-REBUILD_CACHE_KIB}")
    try:
        yield
    finally:
        for schema, size in before.items():
            db.execute(f"PRAGMA {schema}.cache_size = {size}")


def swap_in(db: SqlDb) -> None:
    """Replace the real read models with the rebuilt (temporary) ones, all in one transaction. On SQLite the real
    tables' indexes are dropped first and built again after the copy: one pass over the sorted keys, against an
    insert at a random place for each row (a third less time for the copy of a million-event log)."""
    real, temporary = schemas(db)
    indexes = [s for s in SCHEMA if s.startswith("CREATE INDEX") and s.split()[7] in TABLES] \
        if db.dialect == "sqlite" else []
    with db.transaction():
        for statement in indexes:
            db.execute(f"DROP INDEX IF EXISTS {real}.{statement.split()[5]}")
        for table in TABLES:
            columns = ", ".join(db.columns(f"{temporary}.{table}"))
            db.execute(f"DELETE FROM {real}.{table}")  # noqa: S608 - fixed table names
            db.execute(f"INSERT INTO {real}.{table} ({columns}) "  # noqa: S608
                       f"SELECT {columns} FROM {temporary}.{table}")
        for statement in indexes:  # named with their schema: the temporary tables hide the real ones' names
            db.execute(statement.replace("IF NOT EXISTS ", f"{real}.", 1))


def _exists(db: SqlDb, table: str) -> bool:
    try:
        db.query(f"SELECT 1 FROM {table} LIMIT 0")  # noqa: S608 - fixed table names
    except Exception:  # noqa: BLE001 - sqlite3 and psycopg raise different errors
        return False
    return True


def _table_of(statement: str) -> str:
    """The table a `CREATE TABLE IF NOT EXISTS name (...)` statement creates."""
    return statement.split()[5]
