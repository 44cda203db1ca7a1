"""The shape every stored event shares; aggregates fold them, the store records them."""

import functools
from datetime import datetime
from uuid import UUID, uuid5

from actorbatch.frozen import frozen

# Namespace of every deterministic id: jobs and servers by name, runs by (job, fire time).
NAMESPACE = UUID("5b0d8a7e-1f4e-4c62-9a55-6c1d3e0b7a21")


@frozen
class Event:
    """One recorded fact about one aggregate at one version; `timestamp` is when it was decided."""

    originator_id: UUID
    originator_version: int
    timestamp: datetime

    @property
    def action(self) -> str:
        """The audit name of the event, e.g. `job.added`."""
        return getattr(type(self), "ACTION", type(self).__name__)


@functools.lru_cache(maxsize=4096)  # every run event a scheduler hears asks it of its job's name
def job_id(name: str) -> UUID:
    return uuid5(NAMESPACE, f"job:{name}")


def server_id(name: str) -> UUID:
    return uuid5(NAMESPACE, f"server:{name}")


def log_id(run_id: UUID, task: str, attempt: int) -> UUID:
    """The id of the run-log stream of one attempt: only its holder writes it, so it never conflicts."""
    return uuid5(run_id, f"log:{task}:{attempt}")

