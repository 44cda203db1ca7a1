"""Seals: one row per event, written as the read models first fold it, so a later change names its event.

A seal holds the event's position, aggregate, version, its own hash and the running chain's digest there (see
`digest`). `audit verify` recomputes both from the log: a hash that differs names a changed event, an aggregate
and version found at another position name a moved one, a seal with no event a deleted one. Seals outlive
`projections rebuild` (a rebuilt read model must not bless a changed log) and archiving (`store.archive`: the
history is the live log and the archive merged); the first catch-up on a store made before seals existed seals
what it holds.
"""

from collections.abc import Iterator, Sequence
from typing import Any

from actorbatch.projections.digest import GENESIS, chain, event_hash
from actorbatch.store.archive import Archive, merged
from actorbatch.store.eventstore import EventStore
from actorbatch.store.sql import SqlDb

SCHEMA = ("CREATE TABLE IF NOT EXISTS ab_seals (position BIGINT PRIMARY KEY, aggregate TEXT NOT NULL, "
          "version BIGINT NOT NULL, hash BLOB NOT NULL, digest BLOB NOT NULL)")
READ_BATCH = 50_000

Seal = tuple[int, str, int, bytes, bytes]  # position, aggregate, version, hash, digest


class Sealer:
    """Makes the seals of the events a catch-up folds; remembers the last digest it made."""

    def __init__(self, store: EventStore, db: SqlDb, archive: Archive) -> None:
        self.store, self.db, self.archive = store, db, archive
        self._last: tuple[int, str] = (-1, GENESIS)  # the last seal this process wrote: none yet

    def sealed_until(self) -> int:
        rows = self.db.query("SELECT MAX(position) FROM ab_seals")
        return int(rows[0][0] or 0)

    def seals(self, after: int, notes: Sequence[Any]) -> list[Seal]:
        """The seals of `notes` (the notifications after position `after`) not sealed yet. Events before them
        that have no seal (a store older than seals) are sealed first, in transactions of their own."""
        # Seals are written with the read models' position: if this process sealed up to `after`, none are beyond.
        until = after if after == self._last[0] else self.sealed_until()
        if after > until:
            for backlog in batches(self.store, self.archive, until, after):
                with self.db.transaction():
                    self.write(self.seals(until, backlog))
                until = backlog[-1].id
        digest = self.digest_at(until)
        rows = []
        for note in notes:
            if note.id > until:
                digest = chain(digest, [note])
                rows.append((note.id, str(note.originator_id), note.originator_version, event_hash(note),
                             bytes.fromhex(digest)))
        return rows

    def write(self, seals: Sequence[Seal]) -> None:
        """Inside the catch-up's transaction."""
        self.db.executemany("INSERT INTO ab_seals (position, aggregate, version, hash, digest) "
                            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (position) DO NOTHING", seals)
        if seals:
            self._last = (seals[-1][0], seals[-1][4].hex())

    def digest_at(self, position: int) -> str:
        """The chain's digest after `position`, the last sealed one: remembered, or from its seal."""
        if position == 0:
            return GENESIS
        if self._last[0] == position:
            return self._last[1]
        rows = self.db.query("SELECT digest FROM ab_seals WHERE position = ?", (position,))
        return bytes(rows[0][0]).hex()


def batches(store: EventStore, archive: Archive, after: int, until: int | None = None) -> Iterator[list[Any]]:
    """The whole history after `after` (up to `until`), live and archived events merged by position, a batch at a
    time."""
    while True:
        archived = [a for a in archive.after(after, READ_BATCH) if until is None or a.id <= until]
        notes = merged(store.read_raw(after, READ_BATCH, until), archived, READ_BATCH)
        if not notes:
            return
        yield notes
        after = notes[-1].id
