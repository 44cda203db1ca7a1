"""The archive: events moved out of the live log, kept byte for byte with their log positions.

`history prune` moves the events of finished runs past their retention, and all but the last heartbeat of each
server's unbroken run of heartbeats, into the table `ab_archive` of the same database, in one transaction with
their removal from the live log. Each row keeps its notification id, aggregate, version, topic and stored bytes,
so the running digest of the whole history (`projections/digest.py`) is the chain over live and archived events
merged by position, and `audit verify` still proves every event ever written.

Only events the read models have already folded (at or before their position) are moved, so a catch-up never
misses one; and never the newest event of the log, whose position SQLite would otherwise hand out again.
"""

import heapq
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from actorbatch.frozen import frozen
from actorbatch.store.sql import SqlDb

TABLE = "ab_archive"
SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (id BIGINT PRIMARY KEY, originator_id TEXT NOT NULL, "
    "originator_version BIGINT NOT NULL, topic TEXT NOT NULL, state BLOB NOT NULL, pruned_at TEXT NOT NULL)",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_aggregate ON {TABLE} (originator_id, originator_version)",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_pruned ON {TABLE} (pruned_at)",
)
CHUNK = 500  # aggregate ids per statement


@frozen
class Archived:
    """An archived event, shaped like a stored notification (what the digest and the mapper read)."""

    id: int
    originator_id: UUID
    originator_version: int
    topic: str
    state: bytes


class Archive:
    """Moves events from the live log to `ab_archive` and reads them back, on the read models' connection."""

    def __init__(self, db: SqlDb) -> None:
        self.db = db
        sqlite = db.dialect == "sqlite"
        self._events = "stored_events" if sqlite else "actorbatch_events"
        self._position = "rowid" if sqlite else "notification_id"
        self._id_text = "originator_id" if sqlite else "originator_id::text"

    def create(self) -> None:
        for statement in SCHEMA:
            self.db.execute(statement)

    def _key(self, aggregate_id: UUID) -> str:
        """An aggregate id as the archive holds it: as the live table's text (SQLite: hex; PostgreSQL: dashed)."""
        return aggregate_id.hex if self.db.dialect == "sqlite" else str(aggregate_id)

    def _live_key(self, aggregate_id: UUID) -> Any:
        return aggregate_id.hex if self.db.dialect == "sqlite" else aggregate_id

    def move_aggregates(self, aggregate_ids: Sequence[UUID], upto: int, stamp: str) -> int:
        """Inside a transaction: move every event of these aggregates at or before position `upto`."""
        moved = 0
        for start in range(0, len(aggregate_ids), CHUNK):
            keys = [self._live_key(a) for a in aggregate_ids[start:start + CHUNK]]
            moved += self._move(f"originator_id IN ({', '.join('?' * len(keys))}) AND {self._position} <= ?",
                                (*keys, upto), stamp)
        return moved

    def count_aggregates(self, aggregate_ids: Sequence[UUID], upto: int) -> int:
        """How many events `move_aggregates` would move now (for a dry run)."""
        counted = 0
        for start in range(0, len(aggregate_ids), CHUNK):
            keys = [self._live_key(a) for a in aggregate_ids[start:start + CHUNK]]
            counted += int(self.db.query(
                f"SELECT COUNT(*) FROM {self._events} WHERE originator_id IN "  # noqa: S608
                f"({', '.join('?' * len(keys))}) AND {self._position} <= ?", (*keys, upto))[0][0])
        return counted

    def move_heartbeats(self, topic: str, upto: int, stamp: str) -> int:
        """Inside a transaction: move each heartbeat that the same server's next event supersedes (another
        heartbeat), at or before `upto`. The last heartbeat before a start or stop, and the latest, stay: a
        server's folded state is the same from what is left."""
        return self._move(
            f"topic = ? AND {self._position} <= ? AND EXISTS (SELECT 1 FROM {self._events} n "  # noqa: S608
            f"WHERE n.originator_id = e.originator_id AND n.originator_version = e.originator_version + 1 "
            f"AND n.topic = ?)", (topic, upto, topic), stamp, exact=False)

    def _move(self, where: str, params: Sequence[Any], stamp: str, exact: bool = True) -> int:
        moved = self.db.execute(
            f"INSERT INTO {TABLE} (id, originator_id, originator_version, topic, state, pruned_at) "  # noqa: S608
            f"SELECT {self._position}, {self._id_text}, originator_version, topic, state, ? "
            f"FROM {self._events} e WHERE {where}", (stamp, *params))
        if exact:  # the same rows again: no event of a finished run can appear at or before `upto` meanwhile
            self.db.execute(f"DELETE FROM {self._events} WHERE {where}", params)  # noqa: S608
        else:  # a heartbeat recorded meanwhile may supersede one more: delete exactly what was copied
            self.db.execute(f"DELETE FROM {self._events} WHERE {self._position} IN "  # noqa: S608
                            f"(SELECT id FROM {TABLE} WHERE pruned_at = ?)", (stamp,))
        return moved

    def count_live(self) -> int:
        return int(self.db.query(f"SELECT COUNT(*) FROM {self._events}")[0][0])  # noqa: S608

    def count(self) -> int:
        return int(self.db.query(f"SELECT COUNT(*) FROM {TABLE}")[0][0])  # noqa: S608

    def count_heartbeats(self, topic: str, upto: int) -> int:
        """How many heartbeats `move_heartbeats` would move now (for a dry run)."""
        rows = self.db.query(
            f"SELECT COUNT(*) FROM {self._events} e WHERE topic = ? AND {self._position} <= ? AND EXISTS "  # noqa: S608
            f"(SELECT 1 FROM {self._events} n WHERE n.originator_id = e.originator_id "
            f"AND n.originator_version = e.originator_version + 1 AND n.topic = ?)", (topic, upto, topic))
        return int(rows[0][0])

    def head(self) -> int:
        """The live log's newest position (0 when empty)."""
        return int(self.db.query(f"SELECT COALESCE(MAX({self._position}), 0) FROM {self._events}")[0][0])  # noqa: S608

    def after(self, position: int, limit: int) -> list[Archived]:
        return self._rows("WHERE id > ? ORDER BY id LIMIT ?", (position, limit))

    def of(self, aggregate_id: UUID) -> list[Archived]:
        """An aggregate's archived events, in version order."""
        return self._rows("WHERE originator_id = ? ORDER BY originator_version", (self._key(aggregate_id),))

    def ids(self, prefix: str, limit: int = 2) -> list[str]:
        """Archived aggregate ids (canonical form) that start with `prefix` (hex digits and dashes)."""
        found = {str(UUID(k)) for (k,) in self.db.query(
            f"SELECT DISTINCT originator_id FROM {TABLE} WHERE originator_id >= ? AND originator_id < ? "  # noqa: S608
            "LIMIT 100", (self._low(prefix), self._low(prefix) + "\x7f"))}
        return sorted(i for i in found if i.startswith(prefix))[:limit]

    def _low(self, prefix: str) -> str:
        return prefix.replace("-", "") if self.db.dialect == "sqlite" else prefix

    def _rows(self, where: str, params: Sequence[Any]) -> list[Archived]:
        rows = self.db.query(f"SELECT id, originator_id, originator_version, topic, state FROM {TABLE} "  # noqa: S608
                             + where, params)
        return [Archived(int(i), UUID(str(o)), int(v), str(t), bytes(s)) for i, o, v, t, s in rows]


def merged(live: Sequence[Any], archived: Sequence[Archived], limit: int | None = None) -> list[Any]:
    """Live notifications and archived events in position order (the first `limit`)."""
    every = list(heapq.merge(live, archived, key=lambda n: int(n.id)))
    return every if limit is None else every[:limit]
