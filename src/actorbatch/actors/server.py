"""The batch server supervisor: wires the actors of one server, starts them, drains and stops them.

One server = a lease manager (decides), an executor pool (runs bodies), a log follower (hears other processes),
a projector (keeps read models fresh) and a timer (the only sleeper). Collaborators are passed in, never looked up.
"""

import contextlib
import copy
import functools
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import pykka

from actorbatch.actors.executor import ExecutorPool
from actorbatch.actors.follower import Doorbell, Follower, Pace, Projector
from actorbatch.actors.lease_manager import LeaseManager
from actorbatch.actors.messages import Beat, Busy, Connect, Drain, Listening, Observed, Poll, Tick
from actorbatch.actors.notifier import Notifier, NotifierSeed, Profiles
from actorbatch.actors.problems import ProblemLog
from actorbatch.actors.scheduler import Scheduler
from actorbatch.actors.senders import SmtpSettings, check_retry
from actorbatch.actors.timer import Timer
from actorbatch.behaviours.leasing import LeaseBehaviour
from actorbatch.behaviours.scheduling import ScheduleBehaviour
from actorbatch.clock import Clock, SystemClock, monotonic_s
from actorbatch.domain.access import Privileges
from actorbatch.domain.events import Event
from actorbatch.domain.limits import (
    LEASE_TIMEOUT_S,
    LOAD_BIAS,
    MAX_THREADS,
    check_count,
    check_name,
    check_number,
    check_text,
    show,
)
from actorbatch.domain.notifications import RetryPolicy
from actorbatch.domain.servers import Server, Window, capacity, zone
from actorbatch.domain.users import ACCESS_ID, AccessState
from actorbatch.errors import Conflict, InvalidJob, StoreFailed, StoreUnavailable
from actorbatch.node.boot import copy_runs, register, seed
from actorbatch.node.notify import TICK_S as NOTIFY_TICK_S
from actorbatch.node.schedule import TICK_S as SCHEDULE_TICK_S
from actorbatch.projections.views import Views
from actorbatch.runners.shell import die_with_parent
from actorbatch.store.eventstore import EventStore
from actorbatch.store.notify import LogListener
from actorbatch.store.outage import CAP_S, FIRST_S
from actorbatch.store.sql import SqlDb

if TYPE_CHECKING:
    from actorbatch.actors.metrics import MetricsEndpoint

log = logging.getLogger(__name__)
# On stop, after the running attempts ended: how long an unreachable store may keep their outcomes waiting.
# Past it the server exits 1; the attempts it could not report are lost attempts, retried by another server.
STORE_WAIT_S = 30.0
STOP_RETRY_S = 5.0  # and how long the last words of a stopping server may wait for it
HEALTHY_RUN_S = 60.0  # a projector child that ran this long before dying is restarted without delay
PROJECTOR_NICE = 10  # the read models may lag (every read catches them up first); claims and outcomes may not


@dataclass(frozen=True)
class ServerConfig:
    name: str
    groups: tuple[str, ...] = ("default",)
    threads: int = 4
    windows: tuple[Window, ...] = ()
    timezone: str = "UTC"
    lease_timeout_s: float = 30.0
    poll_s: float = 0.01  # how often to read the log for work submitted by other processes, while no commit
    # notifications arrive (SQLite; PostgreSQL while its listen connection is down)
    safety_poll_s: float = 1.0  # PostgreSQL, while notifications arrive: read the log this often anyway
    idle_poll_s: float = 0.1  # SQLite: how often to read after a second with nothing new (= poll_s: never relax)
    projector: str = "thread"  # keep the read models: "thread" (in this process), "process" (a child, which
    # takes the work off this process's interpreter lock and onto another core) or "off"
    tick_s: float = 0.25  # how often to look for expired leases
    metrics_port: int | None = None  # --metrics-port: serve Prometheus metrics on this port (0: any free one)
    metrics_host: str = "127.0.0.1"  # --metrics-host
    load_bias: float = 1.0  # --load-bias: 0 = every free thread competes equally; larger = a server busier than
    # a live peer of a task's group holds the task back longer for it (LeaseBehaviour.claims)
    smtp: SmtpSettings | None = None  # where e-mail alerts go (ACTORBATCH_SMTP_URL, _FROM); None: no e-mail
    notify_retry: RetryPolicy = field(default_factory=RetryPolicy)  # how failed e-mails and webhooks are retried

    def __post_init__(self) -> None:
        """Checked before anything is written: a server.started event with a bad value would stop every reader."""
        check_name(self.name, "--name")
        if not isinstance(self.groups, tuple):
            raise InvalidJob(f"--groups: expected a tuple of group names, got {show(self.groups)}")
        if not self.groups:
            raise InvalidJob("--groups: name at least one batch group")
        for group in self.groups:
            check_name(group, "--groups")
        check_count(self.threads, "--threads", 1, MAX_THREADS)
        for window in self.windows:
            if not isinstance(window, Window):
                raise InvalidJob(f"--window: expected a Window (see parse_window), got {show(window)}")
            check_count(window.threads, "--window: threads", 0, MAX_THREADS)
        try:
            zone(self.timezone)
        except InvalidJob as error:
            raise InvalidJob(f"--timezone: {error}") from None
        check_number(self.lease_timeout_s, "--lease-timeout", *LEASE_TIMEOUT_S, unit="s")
        check_number(self.load_bias, "--load-bias", *LOAD_BIAS)
        if self.metrics_port is not None:
            check_count(self.metrics_port, "--metrics-port", 0, 65535)
        check_text(self.metrics_host, "--metrics-host", 255)
        check_number(self.poll_s, "poll_s", 0.001, 60, unit="s")
        check_number(self.safety_poll_s, "safety_poll_s", 0.001, 3600, unit="s")
        check_number(self.idle_poll_s, "idle_poll_s", 0.001, 60, unit="s")
        check_number(self.tick_s, "tick_s", 0.001, 60, unit="s")
        if not isinstance(self.smtp, SmtpSettings | None):
            raise InvalidJob(f"smtp: expected SmtpSettings (see smtp_settings), got {show(self.smtp)}")
        check_retry(self.notify_retry)
        if self.projector not in ("thread", "process", "off"):
            raise InvalidJob(f"--projector: expected thread, process or off, got {show(self.projector)}")


class BatchServer:
    """A full batch server in this process: `start()`, then `stop()` (drains first) or use it as a context manager."""

    def __init__(self, url: str, config: ServerConfig, clock: Clock | None = None) -> None:
        self.url, self.config, self.clock = url, config, clock or SystemClock()
        self._refs: list[Any] = []
        self._started = False

    def start(self) -> "BatchServer":
        c = self.config
        self.store = EventStore(self.url)
        self.views = Views(self.store, SqlDb(self.store.url))
        self.views.check()
        self.problems = ProblemLog(c.name)
        self.server = self._register()
        behaviour = LeaseBehaviour(c.name, c.groups, c.lease_timeout_s, c.load_bias)
        schedules = ScheduleBehaviour(self.clock.now())
        position, seeded = self._seed(behaviour, schedules)
        tz = zone(c.timezone)
        self.timer = Timer(self.clock)

        def free_threads(now: datetime) -> int:
            return capacity(c.threads, c.windows, tz, now)

        self.manager = LeaseManager.start(behaviour, self.server, self.store, self.clock, self.timer, free_threads,
                                          self.problems)
        max_threads = max([c.threads, *(w.threads for w in c.windows)])
        self.executor = ExecutorPool.start(self.store, self.clock, max_threads, self.manager)
        self.manager.tell(Connect(self.executor))
        self.scheduler = Scheduler.start(schedules, self.store, self.clock, self.timer, self.problems)
        self.notifier = Notifier.start(c.name, self.store, self.clock, self.timer, Profiles(self.views), c.smtp,
                                       c.lease_timeout_s, c.notify_retry, self.problems, seeded)
        postgres = self.store.url.kind == "postgresql"
        self.pace = Pace(c.poll_s, c.safety_poll_s, None if postgres else c.idle_poll_s)
        doorbell = Doorbell()
        self.metrics: MetricsEndpoint | None = None
        hearers = [self.manager, self.scheduler, self.notifier]
        if c.metrics_port is not None:
            from actorbatch.actors import metrics  # prometheus-client, loaded only when asked for

            self.metrics = metrics.MetricsEndpoint(c.name, self.store, self.clock, c.metrics_host, c.metrics_port)
            hearers.append(self.metrics.actor)
        self.follower = Follower.start(self.store, position, hearers, self.clock, self.timer, self.pace, doorbell)
        self.listener: LogListener | None = None
        if postgres:  # commit notifications wake the follower; SQLite has none, so there it polls
            self.listener = LogListener(self.store.url, doorbell.ring, self._listening).start()
        self._refs = [self.follower, self.scheduler, self.manager, self.executor, self.notifier]
        self._projector_process: ProjectorProcess | None = None
        if c.projector == "thread":
            projector = Projector.start(self.views)
            self._refs.append(projector)
            self.timer.every(0.5, projector, Poll())
        elif c.projector == "process":
            self._projector_process = ProjectorProcess(self.url)
        self.store.listen(self._heard)
        self.follower.tell(Poll())
        self.timer.every(c.tick_s, self.manager, Tick())
        self.timer.every(c.lease_timeout_s / 3, self.manager, Beat())
        self.timer.every(0.5, self.executor, Tick())
        self.timer.every(SCHEDULE_TICK_S, self.scheduler, Tick())
        self.timer.every(NOTIFY_TICK_S, self.notifier, Tick())
        self.manager.tell(Tick())
        self.scheduler.tell(Tick())
        self._started = True
        return self

    def _listening(self, on: bool) -> None:
        with contextlib.suppress(pykka.ActorDeadError):  # the server is stopping
            self.follower.tell(Listening(on))

    def _heard(self, events: Sequence[Event]) -> None:
        self.manager.tell(Observed(events))
        self.scheduler.tell(Observed(events))
        self.notifier.tell(Observed(events))
        if self.metrics is not None:
            self.metrics.recorded(events)

    def _register(self) -> Server:
        c = self.config
        return register(self.store, c.name, c.groups, c.threads, c.lease_timeout_s, socket.gethostname(),
                        os.getpid(), self.clock.now(), c.windows, c.timezone)

    def _seed(self, behaviour: LeaseBehaviour, schedules: ScheduleBehaviour) -> tuple[int, NotifierSeed]:
        """Seed from the read models; returns the log position they reflect, where the follower starts, and what
        the notifier starts from."""
        with self.views.db.transaction():
            position = self.views.position()
            runs = self.views.runs(status="active", limit=10**9)
            servers = self.views.servers()
            jobs = self.views.job_states()
            problems = [p for p in self.views.problems() if p.rested is None]
            users = self.views.users()
            deliveries = self.views.deliveries()
        # Closed, as the log has it now: if that is later than the read models, the follower brings it again.
        closed = self.store.load(AccessState, ACCESS_ID) is not None
        seeded = (copy_runs(runs), deliveries, [copy.copy(s) for s in servers])
        seed(behaviour, schedules, self.server, jobs, runs, servers, problems, Privileges(users, closed))
        self.problems.report(problems)
        return position, seeded

    def healthy(self) -> bool:
        """False once any actor of this server has died or its store cannot write: the supervisor then stops the
        whole server."""
        return self._started and self.store.failure is None and all(ref.is_alive() for ref in self._refs)

    @property
    def failure(self) -> StoreFailed | None:
        """Why the server had to stop, if its store cannot write (disk full, read-only)."""
        return self.store.failure

    def tend(self) -> None:
        """The supervisor's round: restart the projector child if it died (with backoff)."""
        if self._projector_process is not None:
            self._projector_process.tend()

    def _ask(self) -> tuple[int, bool, int]:
        return cast(tuple[int, bool, int], self.manager.ask(Busy()))

    def busy(self) -> int:
        """Attempts holding (or queued for) a thread."""
        return self._ask()[0]

    def drain_requested(self) -> bool:
        """Whether `server drain NAME` (or `drain()`) asked this server to stop taking work."""
        return self._ask()[1]

    def drain(self, timeout_s: float | None = None) -> bool:
        """Stop claiming and wait for running attempts and deliveries to end; False if `timeout_s` ran out first."""
        self.manager.tell(Drain())
        self.notifier.tell(Drain())
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while self.busy() or self.notifier.ask(Busy()):
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def _unrecorded(self, wait_s: float) -> int:
        """Wait up to `wait_s` for the outcomes of ended attempts to reach the store; how many still have not."""
        deadline = monotonic_s() + wait_s
        while (pending := self._ask()[2]) and monotonic_s() < deadline:
            time.sleep(0.05)
        return pending

    def stop(self, drain: bool = True, reason: str = "stopped") -> None:
        """Stop the server (draining first); StoreUnavailable, after everything is stopped, if the store stayed
        unreachable and some outcomes or the stop itself could not be recorded."""
        if not self._started:
            return
        unrecorded = 0
        if drain and self.healthy():
            self.drain()
            unrecorded = self._unrecorded(STORE_WAIT_S)
        self.store.unlisten(self._heard)
        if self.listener is not None:
            self.listener.stop()
        self.timer.stop()
        for ref in self._refs:
            ref.stop()
        if self.metrics is not None:
            self.metrics.stop()
        if self._projector_process is not None:
            self._projector_process.stop()
        recorded = self._record_stop(reason)
        self.views.db.close()
        self.store.close()
        self._started = False
        if unrecorded or not recorded:
            lost = f": {unrecorded} outcomes not recorded (their attempts will be retried)" if unrecorded else ""
            raise StoreUnavailable(f"server {self.config.name} stopped with the store unreachable{lost}")

    def _record_stop(self, reason: str) -> bool:
        """Say in the log that this server stopped, and bring the read models up to date; False if the store
        could not be reached within STOP_RETRY_S (the server is then judged by its missing heartbeats)."""
        stopped = self.server.stop(reason, self.clock.now())
        deadline = monotonic_s() + STOP_RETRY_S
        while True:
            try:  # again from the start: a connection broken by a database restart fails once, then reopens
                if not self.store.recorded(stopped):
                    with contextlib.suppress(Conflict):  # a newer incarnation of this name owns the record now
                        self.store.append(stopped)
                self.views.catch_up()
                return True
            except StoreUnavailable:
                if monotonic_s() > deadline:
                    return False
                time.sleep(0.2)
            except StoreFailed:
                return False

    def __enter__(self) -> "BatchServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _projector_child(server_pid: int) -> None:
    """In the projector child before it runs: die with the server, and leave the CPU to it when both want it."""
    die_with_parent(server_pid)
    os.nice(PROJECTOR_NICE)


class ProjectorProcess:
    """The read models kept by a child process (`projections follow`), on another core; restarted with backoff
    if it dies, and reaped, never left defunct."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._delay_s = FIRST_S
        self._restart_at_s: float | None = None
        self._spawn()

    def _spawn(self) -> None:
        self._started_s = monotonic_s()
        # The URL (which may hold a password) goes by the environment, never argv, which `ps` shows everyone;
        # the child acts as the user the store vouches for.
        env = {k: v for k, v in os.environ.items() if k != "ACTORBATCH_USER"} | {"ACTORBATCH_DB": self.url}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "actorbatch", "projections", "follow"], env=env,
            preexec_fn=functools.partial(_projector_child, os.getpid()))  # noqa: PLW1509 - prctl, getppid, nice

    def tend(self) -> None:
        code = self._process.poll()
        if code is None:
            return
        now = monotonic_s()
        if self._restart_at_s is None:
            if now - self._started_s > HEALTHY_RUN_S:
                self._delay_s = FIRST_S
            self._restart_at_s = now + self._delay_s
            log.warning("projector process exited with code %s; restarting it in %.1f s", code, self._delay_s)
            self._delay_s = min(self._delay_s * 2, CAP_S)
        elif now >= self._restart_at_s:
            self._restart_at_s = None
            self._spawn()

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait()
