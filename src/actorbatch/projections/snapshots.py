"""Snapshots of the status screen's read models, so that `status --as-of` folds thousands of events, not millions.

Every SNAPSHOT_EVERY events (and never more often than the last snapshot had rows, which bounds their total size
by the log's) the projector copies the rows the status screen reads: every job, every run not yet complete, every
job version's definition, every server and every problem. It takes them from what it has folded (the rows as they
would be written at that position), so a batch of any size holds several snapshots, written in its transaction.
`at` is the latest event time folded so far; compressed (zlib), a snapshot takes a few dozen bytes per row.
`Past` (in `past.py`) loads the last snapshot taken at or before a moment into a scratch database and folds the
events after it with the same projector.
"""

import zlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from actorbatch.projections.rows import codec, iso
from actorbatch.store.sql import SqlDb

SNAPSHOT_EVERY = 5_000
SCHEMA = ("CREATE TABLE IF NOT EXISTS ab_snapshots (position BIGINT PRIMARY KEY, at TEXT NOT NULL, "
          "size BIGINT NOT NULL, data BLOB NOT NULL)")
# What a snapshot holds: (table, columns, the rows to copy).
_COPIED = (
    ("ab_jobs", "name, id, data", ""),
    ("ab_runs", "id, job, status, due_at, started_at, ended_at, data", "WHERE status IN ('scheduled', 'running')"),
    ("ab_definitions", "key, data", ""),  # one per job version: few
    ("ab_servers", "name, data", ""),
    ("ab_problems", "aggregate_id, kind, version, position, reason, rested, rest", ""),
)


class Snapshots:
    """Takes the snapshots of one read-model database; remembers the latest it knows of, and asks the database
    only when one seems due (another process may have taken it)."""

    def __init__(self, db: SqlDb) -> None:
        self.db = db
        self._last: tuple[int, int, str | None] | None = None  # position, rows, at

    def _known(self, fresh: bool = False) -> tuple[int, int, str | None]:
        if self._last is None or fresh:
            rows = self.db.query("SELECT position, size, at FROM ab_snapshots ORDER BY position DESC LIMIT 1")
            self._last = (int(rows[0][0]), int(rows[0][1]), str(rows[0][2])) if rows else (0, 0, None)
        return self._last

    def forget(self) -> None:
        """The table was replaced (a rebuild) or a write failed: ask the database next time."""
        self._last = None

    def next_due(self) -> int:
        """The first position at which a snapshot is due: SNAPSHOT_EVERY events after the last one, or as many as
        it had rows if more."""
        previous, size, _ = self._known()
        return previous + max(SNAPSHOT_EVERY, size)

    def take(self, position: int, latest: datetime, tables: dict[str, list[list[Any]]]) -> tuple[Any, ...]:
        """The row of a snapshot at `position` of `tables` (the copied read models as they stand there), remembered
        as the latest; written by `write` in the transaction that moves the read models past it."""
        _, _, at = self._known()
        stamp = max(iso(latest) or "", at or "")
        rows = sum(len(found) for found in tables.values())
        self._last = (position, rows, stamp)
        return position, stamp, rows, zlib.compress(codec.encode(tables), 1)

    def write(self, taken: Sequence[tuple[Any, ...]]) -> None:
        """Inside the projector's transaction, with the batch whose positions the snapshots fall on."""
        self.db.executemany("INSERT INTO ab_snapshots (position, at, size, data) VALUES (?, ?, ?, ?) "
                            "ON CONFLICT (position) DO NOTHING", taken)


def copied(db: SqlDb) -> dict[str, dict[Any, list[Any]]]:
    """The rows a snapshot copies, as the read models hold them, by table and key (their first column)."""
    return {table: {row[0]: list(row) for row in db.query(f"SELECT {columns} FROM {table} {where}")}  # noqa: S608
            for table, columns, where in _COPIED}


def latest_before(db: SqlDb, moment: datetime) -> tuple[int, bytes] | None:
    """The last snapshot whose events all happened at or before `moment`: (position, data)."""
    rows = db.query("SELECT position, data FROM ab_snapshots WHERE at <= ? ORDER BY position DESC LIMIT 1",
                    (iso(moment),))
    return (int(rows[0][0]), bytes(rows[0][1])) if rows else None


def restore(db: SqlDb, position: int, data: bytes) -> None:
    """Write a snapshot's rows into empty read models (a scratch database), at its position."""
    tables: dict[str, Sequence[Sequence[Any]]] = codec.decode(zlib.decompress(data))
    for table, columns, _ in _COPIED:
        marks = ", ".join("?" * len(columns.split(",")))
        db.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", tables[table])  # noqa: S608
    db.execute("UPDATE ab_position SET position = ? WHERE name = 'views'", (position,))
