"""The server's log of quarantined aggregates: each named once, however many of its actors meet it, however often.

The lease manager and the scheduler each quarantine what they cannot fold, and both hear every corrupt record; a
poll that meets the same problem again must not repeat it, or the log drowns the line that matters.
"""

import logging
import threading
from collections.abc import Iterable
from uuid import UUID

from actorbatch.domain.quarantine import Problem

log = logging.getLogger("actorbatch.server")


class ProblemLog:
    """Logs each problem (and each putting to rest) once; shared by the actors of one server."""

    def __init__(self, server: str) -> None:
        self.server = server
        self._seen: set[tuple[UUID, int, int | None]] = set()
        self._lock = threading.Lock()

    def report(self, problems: Iterable[Problem]) -> None:
        for problem in problems:
            key = (problem.aggregate_id, problem.version, problem.rested)
            with self._lock:
                if key in self._seen:
                    continue
                self._seen.add(key)
            level = logging.WARNING if problem.rested is None else logging.INFO
            log.log(level, "server %s: %s", self.server, problem.line)
