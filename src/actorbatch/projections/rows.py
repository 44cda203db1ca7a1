"""How the read models' rows hold values: times as ISO text, aggregates as msgpack, runs beside their job's
definition (stored once per job version, however many runs share it)."""

import functools
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from actorbatch.domain.jobs import JobDefinition
from actorbatch.domain.runs import Run
from actorbatch.domain.tasks import TaskRun
from actorbatch.store.sql import SqlDb
from actorbatch.store.transcoder import EMPTY_TUPLE, MsgpackTranscoder, ext_time, ext_uuid, pack

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


def run_blob(run: Run) -> bytes:
    """`codec.encode(run.to_dict())`, byte for byte, made for the run's fixed shape: its ids and times are made
    into extension values here instead of by a call back from the packer for each (a rebuild encodes a row per run
    and per snapshot it is open at: a third less time). A test holds the two to the same bytes."""
    return pack({"id": ext_uuid(run.id), "version": run.version, "job_version": run.job_version, "params": run.params,
                 "user": run.user, "due_at": ext_time(run.due_at), "created_at": ext_time(run.created_at),
                 "fire_time": ext_time(run.fire_time), "started_at": ext_time(run.started_at),
                 "ended_at": ext_time(run.ended_at), "cancelled": run.cancelled, "retry_of": ext_uuid(run.retry_of),
                 "retried_by": EMPTY_TUPLE if run.retried_by == () else run.retried_by, "job": run.job,
                 "tasks": {name: _task(state) for name, state in run.tasks.items()}})


def _task(t: TaskRun) -> dict[str, Any]:
    return {"status": t.status.value, "attempt": t.attempt, "failures": t.failures, "lost": t.lost, "server": t.server,
            "lease_until": ext_time(t.lease_until), "not_before": ext_time(t.not_before),
            "started_at": ext_time(t.started_at), "ended_at": ext_time(t.ended_at), "exit_status": t.exit_status,
            "history": [{key: ext_time(value) if type(value) is datetime else value for key, value in entry.items()}
                        for entry in t.history],
            "result": t.result}


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
