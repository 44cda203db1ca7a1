"""A recorded event log, read from a real store, and what it says about its workload and its cluster.

The workload is what users did (jobs added and scheduled, runs started on demand, runs cancelled); the cluster is
which servers ran, with how many threads, and when they were up. Scheduled runs are not part of the workload: a
replay's schedulers create them again from the jobs' schedules, under whatever misfire policy the replay asks for.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

import actorbatch
from actorbatch.domain.events import Event
from actorbatch.domain.jobs import JobEvent
from actorbatch.domain.runs import RunCancelled, RunCreated
from actorbatch.domain.servers import ServerHeartbeat, ServerStarted, ServerStopped
from simulations.projection import Projection, fold

READ_BATCH = 10_000


@dataclass
class Recording:
    events: list[Event]
    views: Projection  # every aggregate, folded
    servers: dict[str, ServerStarted] = field(default_factory=dict)  # each server's latest start
    up: dict[str, list[tuple[datetime, datetime]]] = field(default_factory=dict)

    @property
    def start(self) -> datetime:
        return self.events[0].timestamp.replace(microsecond=0)

    @property
    def end(self) -> datetime:
        return max(e.timestamp for e in self.events)

    def user_events(self) -> list[Event]:
        """What users wrote: job events and on-demand runs (a scheduler's runs have a fire time)."""
        return [e for e in self.events if isinstance(e, JobEvent) or (isinstance(e, RunCreated) and e.fire_time
                                                                       is None)]

    def cancellations(self) -> list[RunCancelled]:
        return [e for e in self.events if isinstance(e, RunCancelled)]

    def outages(self) -> list[tuple[datetime, datetime]]:
        """When no server was up, between the first start and the end of the recording."""
        spans = sorted(span for spans in self.up.values() for span in spans)
        gaps, covered = [], spans[0][0] if spans else self.end
        for since, until in spans:
            if since > covered:
                gaps.append((covered, since))
            covered = max(covered, until)
        return gaps


def read_recording(url: str) -> Recording:
    """Every event of the store at `url`, in log order, and the cluster it describes."""
    with actorbatch.connect(url) as client:
        events: list[Event] = []
        while batch := client.store.read(len(events), READ_BATCH):
            events.extend(event for _, event in batch)
    if not events:
        raise actorbatch.ActorbatchError(f"the store at {url} holds no events")
    recording = Recording(events, fold(events))
    recording.servers, recording.up = _servers(events, recording.end)
    return recording


def _servers(events: Iterable[Event], end: datetime) -> tuple[dict[str, ServerStarted],
                                                              dict[str, list[tuple[datetime, datetime]]]]:
    """Each server's latest start, and when it was up: from a start to its stop, or to its last heartbeat's lease
    (a server that died says nothing)."""
    starts: dict[str, ServerStarted] = {}
    names: dict[UUID, str] = {}
    up: dict[str, list[tuple[datetime, datetime]]] = {}
    alive: dict[str, tuple[datetime, datetime]] = {}  # name -> (up since, lease until)
    for event in events:
        if isinstance(event, ServerStarted):
            names[event.originator_id], starts[event.name] = event.name, event
            if event.name in alive:
                up.setdefault(event.name, []).append((alive[event.name][0], min(event.timestamp,
                                                                                 alive[event.name][1])))
            alive[event.name] = (event.timestamp, event.timestamp + timedelta(seconds=event.lease_timeout_s))
        elif isinstance(event, ServerHeartbeat) and names.get(event.originator_id) in alive:
            name = names[event.originator_id]
            alive[name] = (alive[name][0], event.lease_until)
        elif isinstance(event, ServerStopped) and names.get(event.originator_id) in alive:
            since, _ = alive.pop(names[event.originator_id])
            up.setdefault(names[event.originator_id], []).append((since, event.timestamp))
    for name, (since, until) in alive.items():
        up.setdefault(name, []).append((since, min(until, end)))
    return starts, up
