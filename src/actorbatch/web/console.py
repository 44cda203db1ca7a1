"""The console's one client of the store, shared by every request, and the loop that keeps its read models caught
up and tells live pages when the log moved.

Requests only query the read models (no catch-up, no replay per request): one loop folds new events into them, and
a page that listens to `/api/events` hears the new log position and fetches its live part again.
"""

import asyncio
import contextlib
import logging
import threading

import anyio.to_thread

from actorbatch.api import Client
from actorbatch.errors import ActorbatchError
from actorbatch.store.notify import LogListener

FOLLOW_S = 0.25  # how often the loop looks at the log: a live page trails it by about this much
IDLE_S = 5.0  # on PostgreSQL, while commit notifications are heard: look anyway this often
log = logging.getLogger(__name__)


class Console:
    """What every request of one console shares: the client (acting as nobody in particular: reads need no user;
    writes go through `as_user`), the options and the log position the read models have reached."""

    def __init__(self, client: Client, *, public_read: bool = False) -> None:
        self.client = client
        client.reads_catch_up = False
        self.public_read = public_read
        self.position = 0
        self._moved = asyncio.Condition()
        self._using = threading.Lock()  # held by a catch-up on its worker thread
        self._closed = False

    def refresh(self) -> int:
        """Fold what the log gained into the read models (another process may have done it); their position.
        Once the console is closed, the last position, without a look at the store."""
        with self._using:
            if self._closed:
                return self.position
            self.client.catch_up()
            return self.client.views.position()

    def close(self) -> None:
        """Wait for a catch-up in flight and start none after: the client is closed next. (Cancelling the loop
        does not stop a catch-up on its worker thread, which then met a closed store at exit.)"""
        with self._using:
            self._closed = True

    async def start(self) -> None:
        """Catch the read models up once, before the console answers anything."""
        await self._look()

    async def follow(self) -> None:
        """Keep the read models caught up until cancelled, waking the live pages on every move. On PostgreSQL
        it waits for the log's commit notifications (as servers do), so an idle console sends no queries but one
        every IDLE_S; elsewhere, or while notifications are not heard, it looks every FOLLOW_S."""
        heard = asyncio.Event()
        loop = asyncio.get_running_loop()
        url = self.client.store.url

        def wake() -> None:  # on the listening thread
            loop.call_soon_threadsafe(heard.set)

        listener = LogListener(url, wake, lambda on: None).start() if url.kind == "postgresql" else None
        try:
            while True:
                heard.clear()  # before reading: a commit during the read wakes the next wait at once
                await self._look()
                idle_s = IDLE_S if listener is not None and listener.listening else FOLLOW_S
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(heard.wait(), idle_s)
        finally:
            if listener is not None:
                await anyio.to_thread.run_sync(listener.stop)

    async def _look(self) -> None:
        try:
            position = await anyio.to_thread.run_sync(self.refresh)
        except ActorbatchError as error:  # the store is away: keep serving what the read models hold
            log.warning("web console: %s", error)
            return
        if position != self.position:
            self.position = position
            async with self._moved:
                self._moved.notify_all()

    async def moved_past(self, seen: int, timeout_s: float) -> int:
        """The log position once it differs from `seen`, or `seen` after `timeout_s` of quiet."""
        async with self._moved:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._moved.wait_for(lambda: self.position != seen), timeout_s)
        return self.position
