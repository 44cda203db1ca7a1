"""How the read models' rows hold values: times as ISO text, aggregates as msgpack, runs beside their job's
definition (stored once per job version, however many runs share it)."""

import functools
from datetime import UTC, datetime
from uuid import UUID

from actorbatch.domain.jobs import JobDefinition
from actorbatch.domain.runs import Run
from actorbatch.store.sql import SqlDb
from actorbatch.store.transcoder import MsgpackTranscoder

codec = MsgpackTranscoder()


def iso(moment: datetime | None) -> str | None:
    """Times in read models and JSON: ISO 8601 UTC with `Z`, microseconds kept so text order is time order."""
    if moment is None:
        return None
    if moment.tzinfo is UTC:
        return _utc_iso(moment)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@functools.lru_cache(maxsize=65_536)
def _utc_iso(moment: datetime) -> str:
    """Kept: a rebuild writes the same few moments (a step's timestamp) into thousands of rows. Only UTC times come
    here: two local times that differ by their fold alone are equal keys but not the same instant."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@functools.lru_cache(maxsize=65_536)
def text(uuid: UUID) -> str:
    """A run's id as its rows key it: a rebuild writes each id into a run row, audit rows and snapshots."""
    return str(uuid)


def definition_key(run: Run) -> str:
    return f"{run.job}@{run.job_version}"


class RunRows:
    """Reads runs from their rows, keeping the definitions it has read: thousands of runs share one."""

    def __init__(self, db: SqlDb) -> None:
        self.db = db
        self.definitions: dict[str, JobDefinition] = {}  # by "job@version"

    def run(self, blob: bytes) -> Run:
        data = codec.decode(blob)
        key = f"{data['job']}@{data['job_version']}"
        definition = self.definitions.get(key)
        if definition is None:
            rows = self.db.query("SELECT data FROM ab_definitions WHERE key = ?", (key,))
            definition = self.definitions[key] = JobDefinition.from_dict(codec.decode(rows[0][0]))
        return Run.from_dict(data, definition)
