"""`audit verify`: read the whole log once and name the first event each check finds changed, missing or moved.

Four checks, each claiming what it can prove (docs/audit.md):
- seals: every event the read models folded still has the hash, aggregate, version and position it was sealed with;
- versions: each aggregate's versions follow one another (an event deleted before it was sealed leaves a gap);
- head: the log still extends a head digest kept elsewhere (`audit head`), seals rewritten or not;
- signatures: with the signing key, every event after the first signed one carries the key's signature.
The history is the live log and the archive (`store.archive`) merged by position. Nothing is written: verifying
must not seal what it has not checked.
"""

from collections.abc import Iterator
from dataclasses import asdict
from typing import Any
from uuid import UUID

from actorbatch.frozen import frozen
from actorbatch.projections.digest import GENESIS, chain, event_hash, head_token
from actorbatch.projections.seals import READ_BATCH, batches
from actorbatch.store import signing
from actorbatch.store.archive import Archive
from actorbatch.store.eventstore import EventStore
from actorbatch.store.sql import SqlDb


@frozen
class Finding:
    """The first thing one check found wrong, naming the event (aggregate, version, position) where it can."""

    check: str  # seals | versions | head | signatures
    kind: str  # changed | missing | moved | inserted | forged | unsigned | diverged
    position: int | None
    aggregate: str | None
    version: int | None
    text: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@frozen
class Head:
    """A head digest kept elsewhere: the chain's digest after `position`."""

    position: int
    digest: str


def _name(note: Any) -> str:
    return f"event {note.originator_id} v{note.originator_version} at position {note.id}"


class Verifier:
    """One pass over the log and the seals, side by side."""

    def __init__(self, store: EventStore, db: SqlDb, archive: Archive, key: bytes | None = None,
                 head: Head | None = None) -> None:
        self.store, self.db, self.archive, self.key, self.head = store, db, archive, key, head
        self.findings: dict[str, Finding] = {}
        self._versions: dict[UUID, int] = {}
        self._seals = self._read_seals()
        self._seal: tuple[Any, ...] | None = next(self._seals, None)
        rows = db.query("SELECT position FROM ab_position WHERE name = 'views'")
        self._folded = int(rows[0][0]) if rows else 0  # every event up to here was sealed as it was folded
        self.signed, self.signed_from = 0, None

    def run(self) -> dict[str, Any]:
        digest, position, events, previous = GENESIS, 0, 0, None
        for notes in batches(self.store, self.archive, 0):
            for note in notes:
                digest = chain(digest, [note])
                if self.head is not None and position < self.head.position <= note.id:
                    self._check_head(digest if note.id == self.head.position else None)
                self._check_seal(note, digest, previous)
                self._check_versions(note)
                self._check_signature(note)
                position, events, previous = note.id, events + 1, note
        self._missing_at_end()
        if self.head is not None and position < self.head.position:
            self._add(Finding("head", "missing", self.head.position, None, None,
                              f"the log ends at position {position}, before the head's position "
                              f"{self.head.position}: events were deleted from its end"))
        findings = sorted(self.findings.values(), key=_order)
        return {"events": events, "head": head_token(position, digest), "head_digest": digest,
                "sealed_until": self._sealed_until(), "signed": self.signed, "signed_from": self.signed_from,
                "signatures_checked": self.key is not None,
                "findings": [f.to_dict() for f in findings],
                "first_mismatch": findings[0].position if findings else None}

    def _add(self, finding: Finding) -> None:
        self.findings.setdefault(finding.check, finding)

    # ---- seals ----

    def _read_seals(self) -> Iterator[tuple[Any, ...]]:
        after = 0
        while rows := self.db.query("SELECT position, aggregate, version, hash, digest FROM ab_seals "
                                    "WHERE position > ? ORDER BY position LIMIT ?", (after, READ_BATCH)):
            yield from rows
            after = rows[-1][0]

    def _sealed_until(self) -> int:
        return int(self.db.query("SELECT MAX(position) FROM ab_seals")[0][0] or 0)

    def _next_seal(self) -> None:
        self._seal = next(self._seals, None)

    def _check_seal(self, note: Any, digest: str, previous: Any) -> None:
        if "seals" in self.findings:
            return
        seal = self._seal
        if seal is not None and seal[0] < note.id:
            self._gone(seal)
            return
        if seal is None:
            if note.id <= self._folded:
                self._add(Finding("seals", "missing", note.id, str(note.originator_id), note.originator_version,
                                  f"{_name(note)} has no seal, though the read models folded it: its seal and "
                                  "those after it were deleted"))
            return  # past the last seal: only the versions, a head and signatures cover it
        if seal[0] > note.id:
            self._add(Finding("seals", "inserted", note.id, str(note.originator_id), note.originator_version,
                              f"{_name(note)} has no seal, though the events after it do: it was inserted"))
            return
        self._next_seal()
        if (seal[1], seal[2]) != (str(note.originator_id), note.originator_version):
            moved_from = self._sealed_at(note)
            if moved_from is not None:
                self._add(Finding("seals", "moved", note.id, str(note.originator_id), note.originator_version,
                                  f"{_name(note)} was sealed at position {moved_from}: the log was reordered"))
            else:
                self._add(Finding("seals", "changed", note.id, str(note.originator_id), note.originator_version,
                                  f"{_name(note)} replaces event {seal[1]} v{seal[2]}, sealed there"))
        elif bytes(seal[3]) != event_hash(note):
            self._add(Finding("seals", "changed", note.id, str(note.originator_id), note.originator_version,
                              f"{_name(note)} was changed after it was sealed"))
        elif bytes(seal[4]).hex() != digest and previous is not None:
            # This event is as sealed, the one before matched its seal: both were rewritten together.
            self._add(Finding("seals", "changed", previous.id, str(previous.originator_id),
                              previous.originator_version,
                              f"{_name(previous)} was changed together with its seal (the next seal still "
                              "follows the original)"))

    def _gone(self, seal: tuple[Any, ...]) -> None:
        """A sealed event whose position is empty: deleted, or moved elsewhere."""
        position, aggregate, version = seal[0], seal[1], seal[2]
        if self.store.has_event(UUID(aggregate), version) or \
                any(a.originator_version == version for a in self.archive.of(UUID(aggregate))):
            self._add(Finding("seals", "moved", position, aggregate, version,
                              f"event {aggregate} v{version} is no longer at position {position}, where it was "
                              "sealed: the log was reordered"))
        else:
            self._add(Finding("seals", "missing", position, aggregate, version,
                              f"event {aggregate} v{version} at position {position} was deleted"))

    def _missing_at_end(self) -> None:
        if "seals" not in self.findings and self._seal is not None:
            self._gone(self._seal)

    def _sealed_at(self, note: Any) -> int | None:
        rows = self.db.query("SELECT position FROM ab_seals WHERE aggregate = ? AND version = ?",
                             (str(note.originator_id), note.originator_version))
        return int(rows[0][0]) if rows else None

    # ---- versions, head, signatures ----

    def _check_versions(self, note: Any) -> None:
        last = self._versions.get(note.originator_id, 0)
        version = note.originator_version
        self._versions[note.originator_id] = max(last, version)
        if version == last + 1 or "versions" in self.findings:
            return
        if version > last + 1:
            self._add(Finding("versions", "missing", note.id, str(note.originator_id), last + 1,
                              f"event {note.originator_id} v{last + 1} is missing: {_name(note)} follows "
                              f"v{last}"))
        else:
            self._add(Finding("versions", "moved", note.id, str(note.originator_id), version,
                              f"{_name(note)} comes after v{last}: the log was reordered"))

    def _check_head(self, digest: str | None) -> None:
        assert self.head is not None
        if digest == self.head.digest:
            return
        where = "is missing" if digest is None else "no longer ends the chain the head was taken from"
        self._add(Finding("head", "diverged", self.head.position, None, None,
                          f"the log no longer extends head {head_token(self.head.position, self.head.digest)}: "
                          f"the event at position {self.head.position} {where}, so an event at or before it was "
                          "changed, deleted or moved"))

    def _check_signature(self, note: Any) -> None:
        signature, _ = signing.split(note.state)
        if signature is not None:
            self.signed += 1
            self.signed_from = self.signed_from or note.id
        if self.key is None or "signatures" in self.findings:
            return
        if signature is None:
            if self.signed_from is not None:
                self._add(Finding("signatures", "unsigned", note.id, str(note.originator_id),
                                  note.originator_version,
                                  f"{_name(note)} is not signed, though events from position {self.signed_from} "
                                  "on are: it was written without the signing key"))
        elif not signing.signed_correctly(self.key, note.originator_id, note.originator_version, note.topic,
                                          note.state):
            self._add(Finding("signatures", "forged", note.id, str(note.originator_id), note.originator_version,
                              f"{_name(note)} does not carry the signing key's signature: it was changed or "
                              "forged"))


def _order(finding: Finding) -> tuple[int, str]:
    return finding.position or 0, finding.check

