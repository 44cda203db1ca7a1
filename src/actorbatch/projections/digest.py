"""A running SHA-256 over the log, so that changing a recorded event is noticed.

The projector writes a checkpoint (position, digest) each time it catches up; `audit verify` recomputes the chain
from the first event and compares it with every checkpoint. Whoever can rewrite both the log and the checkpoints can
hide a change: keep the head digest somewhere else (it is printed by `audit verify`) to close that gap.
"""

import hashlib
from collections.abc import Iterable
from typing import Any

GENESIS = ""


def chain(digest: str, notes: Iterable[Any]) -> str:
    """The digest after `notes` (stored notifications, in log order), continuing from `digest`."""
    for note in notes:
        h = hashlib.sha256(digest.encode())
        h.update(f"|{note.id}|{note.originator_id}|{note.originator_version}|{note.topic}|".encode())
        h.update(note.state)
        digest = h.hexdigest()
    return digest
