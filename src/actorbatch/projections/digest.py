"""Digests of the log: a running SHA-256 chain over every stored event, and each event's own hash.

The chain after position p covers every event up to p, in order, with its position: `audit head` prints it for
keeping elsewhere. Each event's own hash (aggregate, version, topic and stored bytes, not its position) lets
`audit verify` tell an event that changed from one that moved.
"""

import hashlib
from collections.abc import Iterable
from typing import Any

GENESIS = ""
HASH_BYTES = 16  # an event's own hash, truncated: 2**128 work to forge one that matches


def chain(digest: str, notes: Iterable[Any]) -> str:
    """The digest after `notes` (stored notifications, in log order), continuing from `digest`."""
    for note in notes:
        h = hashlib.sha256(digest.encode())
        h.update(f"|{note.id}|{note.originator_id}|{note.originator_version}|{note.topic}|".encode())
        h.update(note.state)
        digest = h.hexdigest()
    return digest


def event_hash(note: Any) -> bytes:
    """The hash of one stored event, wherever it sits in the log."""
    h = hashlib.sha256(f"|{note.originator_id}|{note.originator_version}|{note.topic}|".encode())
    h.update(note.state)
    return h.digest()[:HASH_BYTES]


def head_token(position: int, digest: str) -> str:
    """What `audit head` prints: the position and the chain's digest there."""
    return f"{position}:{digest}"
