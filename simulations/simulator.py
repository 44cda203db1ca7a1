"""One simulation: a cluster of simulated servers, the users and the planned faults on one event loop, checked
throughout; a safety phase with faults, then a liveness phase without, in which every run open when the faults
stopped must complete.

Every random choice comes from `random.Random(config.seed)` (through generators split off it in a fixed order), and
time is the loop's: the same config gives the same log, event for event, on any machine.
"""

import gc
import random
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from actorbatch.domain.events import Event
from actorbatch.domain.notifications import RetryPolicy
from actorbatch.domain.servers import ServerHeartbeat
from simulations.checkers import CheckFailed
from simulations.checkers.books import check_book, check_projection, check_read_models
from simulations.checkers.deliveries import Deliveries
from simulations.checkers.fires import FireTimes
from simulations.checkers.live import LiveAttempts
from simulations.checkers.suspicion import Suspicions
from simulations.checkers.transitions import illegal
from simulations.config import Fault, SimConfig
from simulations.endpoint import Endpoint
from simulations.eventloop import Loop, RunawayLoop, us
from simulations.executor import BodyModel, ProfiledBodies
from simulations.log import SimLog, WriteFaults
from simulations.node import Change, Environment, SimServer
from simulations.projection import Projection
from simulations.users import Users
from simulations.workload import Workload, generate

LIVENESS_STEP_S = 60.0  # how often the liveness phase looks whether every due run has completed
READ_MODEL_CHECK_MAX_EVENTS = 50_000  # above this the SQL read models are not rebuilt at the end: 10 s per 50k


@dataclass
class Result:
    """What a simulation did: its log and read models, the servers' lifecycle, and the first failed check."""

    config: SimConfig
    log: SimLog
    views: Projection
    workload: Workload
    timeline: list[Change]
    steps: int
    ended_us: int
    overlaps: int  # attempts started while a lapsed holder still ran the previous one (excused, then fenced)
    failure: CheckFailed | None = None
    crash: str = ""  # the traceback, when the system under test raised
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return self.log.digest()


class Simulation:
    """A config made into servers, users and checkers on one loop; `run()` once, for its Result."""

    def __init__(self, config: SimConfig, workload: Workload | None = None, bodies: BodyModel | None = None) -> None:
        self.config = config
        seed = random.Random(config.seed)
        # One generator per concern, split off in a fixed order: workload, env, writes, bodies, users, starts.
        rngs = [random.Random(seed.getrandbits(64)) for _ in range(7)]  # ... and the endpoint
        self.workload = workload or generate(config.workload, rngs[0], config.safety_s)
        self.loop = Loop(config.start, config.max_steps)
        self.log = SimLog()
        self.views = Projection()
        self.timeline: list[Change] = []
        timing = config.timing
        skew_s = max((abs(s.skew_s) for s in config.servers), default=0.0)
        self.writes = WriteFaults(rngs[2], config.faults.write_fail_p, config.faults.ambiguous_p)
        self.bodies = bodies or ProfiledBodies(rngs[3], config.faults.slow_p, config.faults.slow_factor)
        self.live = LiveAttempts(self.loop, {s.name: us(s.skew_s) for s in config.servers},
                                 notice_s=timing.poll_s[1] + timing.tick_s + 0.001,
                                 paused_until_us=lambda name: self.servers[name].paused_until_us)
        self.suspicions = Suspicions(self.loop, self._running, self._paused_since)
        self.fires = FireTimes(tolerance_s=2 * skew_s + timing.poll_s[1] + timing.start_s[1] + 1.0)
        self.deliveries = Deliveries()
        self.endpoint_retry = RetryPolicy()
        self.endpoint = Endpoint(self.loop, rngs[6], config.faults.endpoint_fail_p, self.deliveries)
        env = Environment(self.loop, self.log, self.views, timing, rngs[1], self.writes, self.bodies, self.live,
                          self._lifecycle, self.endpoint, self.endpoint_retry)
        self.servers = {spec.name: SimServer(spec, env) for spec in config.servers}
        self.users = Users(self.loop, self.log, self.views, self.workload, rngs[4])
        self._starts = rngs[5]
        self.log.listeners.append(self._appended)

    def _lifecycle(self, change: Change) -> None:
        self.timeline.append(change)

    def _running(self, writer: str) -> bool:
        return any(s.up and s.writer == writer for s in self.servers.values())

    def _paused_since(self, server: str, since_us: int) -> bool:
        return any(c.server == server and c.kind == "pause" and c.at_us + us(c.for_s) > since_us
                   for c in self.timeline)

    def _appended(self, events: Sequence[Event], writer: str) -> None:
        """Every append: judge each event against the log so far, fold it in, and let the servers hear it."""
        for event in events:
            problem = illegal(self.views, event)
            if problem is not None:
                raise CheckFailed(*problem, self.loop.now)
            self.views.apply(event)
        self.live.appended(events)
        self.suspicions.appended(events, writer)
        self.fires.appended(events)
        beats_only = all(isinstance(e, ServerHeartbeat) for e in events)
        for server in self.servers.values():
            server.hear(writer, beats_only)

    # ---- the run ----

    def run(self) -> Result:
        """Both phases and the final checks. The cyclic garbage collector is off meanwhile: the loop makes no
        reference cycles (a test checks), so collecting would only cost time, a quarter of a simulated day."""
        failure, crash = None, ""
        collecting = gc.isenabled()
        gc.disable()
        try:
            self._plan()
            self.loop.run(us(self.config.safety_s))
            self._heal()
            self._liveness()
            self._final_checks()
        except CheckFailed as error:
            failure = error
        except RunawayLoop as error:
            failure = CheckFailed("bounded-steps", str(error), self.loop.now)
        except Exception as error:  # noqa: BLE001 - the system under test raising is a finding, with its seed
            failure = CheckFailed("no-crash", f"{type(error).__name__}: {error}", self.loop.now)
            crash = traceback.format_exc()
        finally:
            for server in self.servers.values():
                server.unlink()
            if collecting:
                gc.enable()
        return Result(self.config, self.log, self.views, self.workload, self.timeline, self.loop.steps,
                      self.loop.now_us, self.live.overlaps, failure, crash, self._counts())

    def _plan(self) -> None:
        self.users.plan()
        for server in self.servers.values():
            self.loop.at(us(self._starts.uniform(*self.config.timing.start_s)), server.start)
        for fault in self.config.faults.planned:
            self.loop.at(us(fault.at_s), partial(self._inject, fault))
        check_us = us(self.config.check_every_s)
        self.loop.at(check_us, lambda: self._check_books(check_us))

    def _store_back(self) -> None:
        self.log.down, self.log.swallowing = False, set()
        for server in self.servers.values():
            server.hear("", beats_only=False)  # followers read what they missed

    def _endpoint_back(self) -> None:
        self.endpoint.down = False

    def _inject(self, fault: Fault) -> None:
        server = self.servers.get(fault.server)
        if server is None and fault.kind not in ("outage", "endpoint"):
            raise ValueError(f"fault {fault}: no server {fault.server!r}")
        if fault.kind == "crash" and server is not None:
            server.crash(lost=fault.for_s is None)
            if fault.for_s is not None:
                self.loop.at(self.loop.now_us + us(fault.for_s), server.start)
        elif fault.kind == "pause" and server is not None:
            server.pause(fault.for_s or 0.0)
        elif fault.kind == "outage":
            self.log.down = True  # appends in flight at that moment may be written with their replies lost
            self.log.swallowing = {s.writer for s in self.servers.values() if s.up and self.writes.rng.random() < 0.5}
            self.loop.at(self.loop.now_us + us(fault.for_s or 0.0), self._store_back)
        elif fault.kind == "endpoint":
            self.endpoint.down = True
            self.loop.at(self.loop.now_us + us(fault.for_s or 0.0), self._endpoint_back)
        elif fault.kind == "drain" and server is not None:
            self.users.drain(server.name)
        elif fault.kind == "fail" and server is not None and server.up and not server.paused:
            server.fail("planned: the store connection broke")

    def _check_books(self, every_us: int) -> None:
        for server in self.servers.values():  # a book with unsettled appends is ahead of the log until settled
            if server.up and server.lease is not None and server.lease.settled:
                check_book(server.name, server.lease.behaviour, self.log, self.views, self.loop.now)
        self.loop.at(self.loop.now_us + every_us, lambda: self._check_books(every_us))

    def _heal(self) -> None:
        """The end of the safety phase: no more failing writes or slow bodies; crashed servers come back."""
        self.writes.enabled = False
        self.log.down = False
        self.endpoint.faulty = False
        if isinstance(self.bodies, ProfiledBodies):
            self.bodies.faulty = False
        for server in self.servers.values():
            server.start()  # a no-op for a running server and for one lost for good

    def _liveness(self) -> None:
        """Every run open when the faults stopped completes (runs created later may still be running), and so does
        every delivery waiting then (the endpoint is back)."""
        open_runs = list(self.views.active.values())
        deadline_us = us(self.config.safety_s + self.config.liveness_s)
        while True:
            open_runs = [r for r in open_runs if not r.complete]
            if not open_runs and not self.deliveries.pending(self.views.notifications.values()):
                return
            if self.loop.now_us >= deadline_us and not open_runs:
                return  # the delivery check at the end names what is still waiting
            if self.loop.now_us >= deadline_us:
                run = open_runs[0]
                tasks = ", ".join(f"{n}={t.status}" for n, t in run.tasks.items())
                raise CheckFailed("liveness", f"{len(open_runs)} runs open at the end of the safety phase are not "
                                  f"complete {self.config.liveness_s:g}s later; e.g. {run.id} ({run.job}): {tasks}",
                                  self.loop.now)
            self.loop.run(min(self.loop.now_us + us(LIVENESS_STEP_S), deadline_us))

    def _final_checks(self) -> None:
        now = self.loop.now
        intervals = up_intervals(self.timeline, self.loop.now_us)

        def covered(start: datetime, end: datetime) -> bool:
            a, b = self.loop.to_us(start), self.loop.to_us(end)
            return any(s <= a and b <= e for spans in intervals.values() for s, e in spans)

        self.fires.missing(now, covered)
        for server in self.servers.values():
            if server.up and server.lease is not None:
                check_book(server.name, server.lease.behaviour, self.log, self.views, now)
        check_projection(self.views, self.log, now)
        self.deliveries.final(self.views.notifications.values(), self.endpoint_retry.tries, now)
        if self.log.head() <= READ_MODEL_CHECK_MAX_EVENTS:
            check_read_models(self.views, self.log, now)

    def _counts(self) -> dict[str, int]:
        counts: dict[str, int] = {"events": self.log.head(), "jobs": len(self.workload.jobs),
                                  "runs": len(self.views.runs), "fire_skips": len(self.views.fires),
                                  "notifications": len(self.views.notifications),
                                  "deliveries": len(self.deliveries.arrived)}
        for change in self.timeline:
            counts[change.kind] = counts.get(change.kind, 0) + 1
        return counts


def up_intervals(timeline: Sequence[Change], end_us: int) -> dict[str, list[tuple[int, int]]]:
    """When each server was running and not paused, from the lifecycle timeline."""
    spans: dict[str, list[tuple[int, int]]] = {}
    since: dict[str, int | None] = {}
    for change in timeline:
        begin = since.get(change.server)
        if change.kind == "start":
            since[change.server] = change.at_us if begin is None else begin
        elif begin is None:
            continue
        elif change.kind == "pause":
            spans.setdefault(change.server, []).append((begin, change.at_us))
            since[change.server] = change.at_us + us(change.for_s)
        else:  # crash, lost, fail, drained
            if change.at_us > begin:
                spans.setdefault(change.server, []).append((begin, change.at_us))
            since[change.server] = None
    for server, begin in since.items():
        if begin is not None and end_us > begin:
            spans.setdefault(server, []).append((begin, end_us))
    return spans
