"""`server start --metrics-port P`: Prometheus metrics of one server, served as text by prometheus-client.

An actor folds the events the server records and hears into a `Tally` (node/metrics.py); at each scrape a
collector reads the tally, and the read models for what the whole cluster has waiting (tasks of active runs by
state, ready tasks per group).
"""

import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import pykka
from prometheus_client import CollectorRegistry, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from actorbatch.actors.messages import Observed
from actorbatch.clock import Clock
from actorbatch.domain.events import Event
from actorbatch.frozen import frozen
from actorbatch.node.metrics import Tally
from actorbatch.projections.views import Views
from actorbatch.store.eventstore import EventStore
from actorbatch.store.sql import SqlDb

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
COUNTERS = {
    "commits": "Transactions this server appended to the log",
    "claims": "Task attempts this server claimed",
    "retries": "Claims of a task's second or later attempt (after a failure or a lost lease)",
    "lease_losses": "Attempts this server recorded as lost: their holder stopped renewing its lease",
}


@frozen
class Recorded:
    """Events this server appended, in one commit."""

    events: Sequence[Event]


class Metrics(pykka.ThreadingActor):
    """Keeps the tally; the only writer of it, so the scrape thread reads it under a lock."""

    def __init__(self, tally: Tally, lock: threading.Lock, latency: Histogram) -> None:
        super().__init__()
        self.tally, self.lock, self.latency = tally, lock, latency

    def on_receive(self, message: Any) -> None:
        with self.lock:
            if isinstance(message, Recorded):
                self.tally.recorded(message.events)
            elif isinstance(message, Observed):
                self.tally.heard(message.events)
            latencies, self.tally.latencies = self.tally.latencies, []
        for seconds in latencies:
            self.latency.observe(seconds)


class Exposition(Collector):
    """What a scrape shows: the tally's counters, and the cluster's waiting work from the read models."""

    def __init__(self, name: str, tally: Tally, lock: threading.Lock, views: Views, clock: Clock) -> None:
        self.name, self.tally, self.lock, self.views, self.clock = name, tally, lock, views, clock

    def collect(self) -> Iterator[Any]:
        with self.lock:
            counts, outcomes = Counter(self.tally.counts), Counter(self.tally.outcomes)
            notifications = Counter(self.tally.notifications)
        for key, text in COUNTERS.items():
            family = CounterMetricFamily(f"actorbatch_{key}", text, labels=["server"])
            family.add_metric([self.name], counts[key])
            yield family
        finished = CounterMetricFamily("actorbatch_tasks_finished", "Task attempts this server ended, by outcome",
                                       labels=["server", "outcome"])
        for outcome in ("succeeded", "failed"):
            finished.add_metric([self.name, outcome], outcomes[outcome])
        yield finished
        ratio = GaugeMetricFamily("actorbatch_commits_per_task", "This server's commits per task attempt it ended",
                                  labels=["server"])
        ratio.add_metric([self.name], counts["commits"] / max(1, sum(outcomes.values())))
        yield ratio
        sent = CounterMetricFamily("actorbatch_notification_deliveries",
                                   "Notification events this server recorded, by action", labels=["server", "action"])
        for action, count in sorted(notifications.items()):
            sent.add_metric([self.name, action], count)
        yield sent
        yield from self._waiting()

    def _waiting(self) -> Iterator[Any]:
        now = self.clock.now()
        states: Counter[str] = Counter()
        queued: Counter[str] = Counter()
        for run in self.views.runs(status="active", now=now, limit=10**9):
            assert run.definition is not None
            due = run.due_at is None or run.due_at <= now
            for task in run.tasks.values():
                states[task.status] += 1
                queued[run.definition.group] += due and task.status == "ready"
        tasks = GaugeMetricFamily("actorbatch_tasks", "Tasks of active runs in the cluster, by state",
                                  labels=["state"])
        for state in ("waiting", "ready", "running"):
            tasks.add_metric([state], states[state])
        yield tasks
        depth = GaugeMetricFamily("actorbatch_queue_depth", "Ready tasks of due runs in the cluster, per batch group",
                                  labels=["group"])
        for group, count in sorted(queued.items()):
            depth.add_metric([group], count)
        yield depth


class MetricsEndpoint:
    """The actor, the collector and the HTTP server of one batch server's metrics."""

    def __init__(self, name: str, store: EventStore, clock: Clock, host: str, port: int) -> None:
        tally, lock = Tally(), threading.Lock()
        self.registry = CollectorRegistry()
        latency = Histogram("actorbatch_claim_latency_seconds", "From a run's due time to this server's first "
                            "claim of one of its tasks", buckets=LATENCY_BUCKETS, registry=self.registry)
        self.views = Views(store, SqlDb(store.url))  # its own connection and caches: scrapes come on their thread
        self.registry.register(Exposition(name, tally, lock, self.views, clock))
        self.actor = Metrics.start(tally, lock, latency)
        self._http, self._thread = start_http_server(port, host, registry=self.registry)
        self.port = self._http.server_port

    def recorded(self, events: Sequence[Event]) -> None:
        self.actor.tell(Recorded(events))

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self.actor.stop()
        self.views.db.close()
