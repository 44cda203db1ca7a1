"""A server's start: register its name on the log, then seed its lease book and schedules from the read models.

The read models may lag the log; the server's follower then delivers the rest, which costs less than catching them
up first. The same steps start a real server and a simulated one.
"""

import copy
from collections.abc import Iterable, Sequence
from datetime import datetime

from actorbatch.behaviours.leasing import LeaseBehaviour
from actorbatch.behaviours.scheduling import ScheduleBehaviour
from actorbatch.domain.access import Privileges
from actorbatch.domain.events import server_id
from actorbatch.domain.jobs import JobState
from actorbatch.domain.quarantine import Problem, Quarantine
from actorbatch.domain.runs import Run
from actorbatch.domain.servers import Server, Window
from actorbatch.errors import ActorbatchError, Conflict
from actorbatch.node.ports import EventLog

REGISTER_ATTEMPTS = 10


def register(log: EventLog, name: str, groups: Sequence[str], threads: int, lease_timeout_s: float, host: str,
             pid: int, now: datetime, windows: Sequence[Window] = (), timezone: str = "UTC") -> Server:
    """Record that this process now serves under `name`; a racing start of the same name makes it try again."""
    for _ in range(REGISTER_ATTEMPTS):
        server = _record(log, name)
        event = server.start(name, groups, threads, lease_timeout_s, host, pid, now, windows, timezone)
        try:
            log.append(event)
        except Conflict:
            continue
        server.apply(event)
        return server
    raise ActorbatchError(f"server {name}: could not register, its record keeps changing")


def _record(log: EventLog, name: str) -> Server:
    """The server's record to start over: `server.started` sets every field anew, so only the version of its
    latest event matters. One read, however long servers have heartbeated under this name (an unreadable event
    there is put to rest by this very start)."""
    server = Server()
    last = log.last(server_id(name))
    if last is not None:
        server.id, server.version = last.originator_id, last.originator_version
    return server


def copy_runs(runs: Iterable[Run]) -> list[Run]:
    """Deep copies of runs that share their definitions (frozen, and the bulk of a wide run's memory)."""
    return [copy.deepcopy(r, {id(r.definition): r.definition}) for r in runs]


def seed(lease: LeaseBehaviour, schedules: ScheduleBehaviour, me: Server, jobs: Iterable[JobState],
         runs: Sequence[Run], servers: Iterable[Server], problems: Sequence[Problem],
         privileges: Privileges | None = None) -> None:
    """Hand the read models' jobs, active runs, servers and users' privileges to the two behaviours, each its own
    copies of runs. Aggregates quarantined by open `problems` stay out of both books: their rows stop before the
    bad event."""
    lease.quarantine, schedules.quarantine = Quarantine(problems), Quarantine(problems)
    lease.privileges = privileges or Privileges()
    runs = [r for r in runs if r.id not in lease.quarantine]
    jobs = [j for j in jobs if j.id not in lease.quarantine]
    by_job: dict[str, list[Run]] = {}
    for run in copy_runs(runs):  # each actor owns its state: no object crosses threads
        by_job.setdefault(run.job, []).append(run)
    for job in jobs:
        assert job.definition is not None
        schedules.adopt(job, by_job.get(job.definition.name, ()))
    for server in servers:
        if server.id is not None:
            lease.servers[server.id] = server
    for run in runs:
        lease.replace(run)
    assert me.id is not None
    # A copy: the log's view of this server must not move the record our heartbeats extend, or a second process
    # under the same name would go unnoticed (our next heartbeat must conflict with its events).
    lease.servers[me.id] = copy.copy(me)
    lease.started_at = me.started_at
