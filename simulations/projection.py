"""The simulated read models: jobs, runs and servers folded from the log with the domain's own classes.

The real read models (`actorbatch.projections.views`) fold the same way into SQL tables; servers seed themselves
from them when they start. Here they are kept in memory and up to date with every append, and a restarting
server seeds itself from copies of them, exactly as a real one reads the tables.
"""

import copy
import functools
from collections.abc import Iterable
from uuid import UUID

from actorbatch.domain.events import Event, job_id
from actorbatch.domain.jobs import JobEvent, JobState
from actorbatch.domain.notifications import Notification, NotificationEvent, NotificationQueued
from actorbatch.domain.quarantine import Quarantine, kind_of
from actorbatch.domain.runs import FireSkipped, Run, RunCreated, RunEvent
from actorbatch.domain.servers import Server, ServerEvent, ServerStarted
from actorbatch.node.boot import copy_runs


class Projection:
    """Every aggregate of the log, folded event by event."""

    def __init__(self) -> None:
        self.jobs: dict[UUID, JobState] = {}
        self.runs: dict[UUID, Run] = {}
        self.servers: dict[UUID, Server] = {}
        self.fires: dict[UUID, FireSkipped] = {}
        self.active: dict[UUID, Run] = {}  # runs not complete yet: what a starting server adopts
        self.notifications: dict[UUID, Notification] = {}
        self.quarantine = Quarantine()

    def apply(self, event: Event) -> None:
        """Fold one event. One that cannot be read or folded (in a recorded real log) quarantines its aggregate,
        which this projection then leaves where it was last good, for good."""
        if event.originator_id in self.quarantine or not self.quarantine.admit(event):
            return
        if not self.quarantine.guard(kind_of(type(event)), event.originator_id, event.originator_version,
                                     functools.partial(self._apply, event), "cannot fold event"):
            for aggregates in (self.runs, self.active, self.jobs, self.servers, self.notifications):
                aggregates.pop(event.originator_id, None)

    def _apply(self, event: Event) -> None:
        if isinstance(event, RunCreated | FireSkipped) and event.fire_time is not None:
            name = event.job if isinstance(event, FireSkipped) else event.definition["name"]
            job = self.jobs.get(job_id(name))
            if job is not None:
                job.fired(event.fire_time, event.reason if isinstance(event, FireSkipped) else None)
        if isinstance(event, FireSkipped):
            self.fires[event.originator_id] = event
        elif isinstance(event, RunEvent):
            run = self.runs.get(event.originator_id)
            if run is None:
                run = self.runs[event.originator_id] = self.active[event.originator_id] = Run()
            run.apply(event)
            if run.complete:
                self.active.pop(run.id, None)
        elif isinstance(event, NotificationEvent):
            notification = self.notifications.get(event.originator_id)
            if notification is None and isinstance(event, NotificationQueued):
                notification = self.notifications[event.originator_id] = Notification()
            if notification is not None:
                notification.apply(event)
        elif isinstance(event, JobEvent):
            self.jobs.setdefault(event.originator_id, JobState()).apply(event)
        elif isinstance(event, ServerEvent):
            server = self.servers.get(event.originator_id)
            if server is None and isinstance(event, ServerStarted):
                server = self.servers[event.originator_id] = Server()
            if server is not None:
                server.apply(event)

    def seed(self) -> tuple[list[JobState], list[Run], list[Server]]:
        """Copies of what a starting server reads from the read models: jobs, active runs, servers.

        Definitions are frozen, so copies share them (a real server decodes its own; copying 10,000 would make
        every simulated restart cost seconds); everything a server changes is copied."""
        jobs = [copy.copy(j) for j in self.jobs.values() if j.exists]
        return jobs, copy_runs(self.active.values()), [copy.copy(s) for s in self.servers.values()]

    def deliveries(self) -> list[Notification]:
        """Copies of the e-mails and webhooks not finished, as a starting server's notifier reads them."""
        return [copy.copy(n) for n in self.notifications.values() if n.status in ("queued", "sending", "retrying")]


def fold(events: Iterable[Event]) -> Projection:
    """A projection built from scratch: what every incrementally kept one must equal."""
    projection = Projection()
    for event in events:
        projection.apply(event)
    return projection
