"""Time travel: the read models as they were at a past moment, rebuilt from the log by the same projector.

`Views.as_of` loads the last snapshot taken before the moment (see `snapshots`) into a scratch database and lets a
projector with a `Past` fold the events after it, live and archived alike (a run pruned since was on the screens
then), up to the first event stamped after the moment: the log as it stood then, to within the writers' clock
skew. Nothing is sealed or snapshotted there, and the store is not written.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from actorbatch.domain.events import Event
from actorbatch.frozen import frozen
from actorbatch.store.archive import Archive, merged
from actorbatch.store.eventstore import EventStore
from actorbatch.store.urls import StoreUrl

SCRATCH = StoreUrl("sqlite", path=":memory:")


@frozen
class Past:
    moment: datetime
    archive: Archive  # the store's archive, read on the store's own connection

    def read(self, store: EventStore, after: int, limit: int) -> list[Any]:
        """The history after position `after`: live and archived events merged by position."""
        return merged(store.read_raw(after, limit), self.archive.after(after, limit), limit)

    def decode(self, notes: list[Any], decode: Callable[[Any], Event]) -> tuple[list[tuple[int, Event]], bool]:
        """(position, event) of `notes` up to the first event stamped after the moment, which `notes` loses too,
        and whether there was one: decoded one by one, so none past the moment is."""
        batch: list[tuple[int, Event]] = []
        for index, note in enumerate(notes):
            event = decode(note)
            if event.timestamp > self.moment:
                del notes[index:]
                return batch, True
            batch.append((note.id, event))
        return batch, False
