"""What one simulation is made of, as frozen data: the cluster, the workload, the faults and the two phases.

A seed (`swarm.py`) or a scenario file (`scenario.py`) builds a SimConfig; the simulator only reads it. Every fault
is planned here, before the run starts, so a config and a seed say everything about what will happen.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class ServerSpec:
    """One batch server, as `actorbatch server start` would be told: name, groups, threads, windows, load bias."""

    name: str
    groups: tuple[str, ...] = ("default",)
    threads: int = 4
    windows: tuple[str, ...] = ()  # as --window takes them: "mon-fri 08:00-18:00=2"
    timezone: str = "UTC"
    skew_s: float = 0.0  # this server's clock reads true time plus this
    load_bias: float = 1.0  # as --load-bias takes it


@dataclass(frozen=True)
class Timing:
    """How fast the servers react; the defaults are those of a real `server start`."""

    lease_timeout_s: float = 30.0
    tick_s: float = 0.25  # the lease manager tries a step an outage cut short again this much later
    poll_s: tuple[float, float] = (0.002, 0.02)  # a server hears another's append after this long (min, max)
    start_s: tuple[float, float] = (1.0, 5.0)  # a process takes this long to (re)start
    views_lag: tuple[int, int] = (0, 0)  # a starting server's read models lag the log by this many events
    skip_idle_reaps: bool = True  # see LeaseShell._expirations: off only to show that it changes nothing
    # Big scenarios read other servers' heartbeats lazily: at the next read, not in a read of their own, and
    # without a step after them (a real server reads the log every 10 ms and steps after each batch). Half of a
    # day's events are heartbeats; read within the safety read's second (much less than 2/3 of the lease
    # timeout), no honest holder's lease can look expired, and a step after heartbeats only decides nothing the
    # lease manager's next due step would not.
    lazy_heartbeats: bool = False


@dataclass(frozen=True)
class Fault:
    """A planned fault: `crash` (down until `for_s` passes; None = lost for good), `pause` (frozen for `for_s`),
    `fail` (the server's store connection fails, its actor dies and the supervisor restarts it), `drain` (an
    operator runs `server drain` on it: it finishes what it runs and stops; its process manager restarts it),
    `outage` (the
    store answers no server for `for_s`; `server` is empty), or `endpoint` (the SMTP server and the webhook
    receivers refuse every delivery for `for_s`; `server` is empty)."""

    kind: str
    server: str
    at_s: float
    for_s: float | None = None


@dataclass(frozen=True)
class FaultSpec:
    """Faults of the safety phase: planned ones, and probabilities drawn per append or per attempt."""

    planned: tuple[Fault, ...] = ()
    write_fail_p: float = 0.0  # an append raises before writing anything
    ambiguous_p: float = 0.0  # an append writes, then raises (the commit's answer was lost)
    slow_p: float = 0.0  # an attempt takes `slow_factor` times its usual time
    slow_factor: float = 20.0
    endpoint_fail_p: float = 0.0  # a delivery (e-mail, webhook) fails: the flaky endpoint


@dataclass(frozen=True)
class WorkloadSpec:
    """The job mix: graph shapes, task profiles, schedules and on-demand submissions."""

    jobs: int = 20
    shapes: Mapping[str, float] = field(default_factory=lambda: {"single": 1.0, "chain": 1.0, "fan": 1.0, "ax": 1.0})
    groups: tuple[str, ...] = ("default",)
    task_s: tuple[float, float] = (1.0, 60.0)  # range of a task's mean duration
    fail_p: float = 0.05  # highest failure probability of a task attempt
    retries: int = 2  # highest `retries` of a task
    retry_delay_s: tuple[float, float] = (1.0, 30.0)
    timeout_share: float = 0.1  # share of tasks with a timeout (a few times their mean duration)
    priorities: Mapping[str, float] = field(default_factory=lambda: {"low": 1.0, "normal": 4.0, "high": 1.0,
                                                                     "critical": 0.3})
    scheduled: float = 0.5  # share of jobs with a [schedule]
    rules: Mapping[str, float] = field(default_factory=lambda: {"every": 1.0, "hourly": 1.0, "cron": 1.0})
    every: tuple[str, ...] = ("1m", "5m", "15m")  # intervals `every` rules choose from
    fire_window: tuple[str, str] = ("00:00", "23:55")  # local times daily/weekly/monthly rules fire in
    timezones: tuple[str, ...] = ("UTC",)
    submissions_per_h: float = 60.0  # on-demand runs of the unscheduled jobs
    later_share: float = 0.2  # share of submissions that are "run later"
    later_s: tuple[float, float] = (10.0, 1800.0)  # ... that much later
    cancels_per_h: float = 0.0
    reschedules_per_h: float = 0.0  # unschedule a job, and schedule it again a little later
    hostile_per_h: float = 0.0  # a hostile user's tries: values at the limits, and past them (which must be refused)
    backfills_per_h: float = 0.0  # `job backfill` of a scheduled job's last hour, racing its schedulers
    alerts: Mapping[str, float] = field(default_factory=lambda: {"on-error": 1.0})  # the jobs' alerts policies
    webhooks: float = 0.0  # share of jobs with a `notify` webhook


@dataclass(frozen=True)
class SimConfig:
    """Everything one simulation run does; `seed` derives every random choice the config left open."""

    seed: int
    name: str
    start: datetime
    safety_s: float  # faults happen in [0, safety_s)
    liveness_s: float  # then, without faults, every run due by safety_s must complete within this
    servers: tuple[ServerSpec, ...]
    workload: WorkloadSpec
    faults: FaultSpec = FaultSpec()
    timing: Timing = Timing()
    check_every_s: float = 600.0  # compare every server's book with the log this often
    max_steps: int = 50_000_000  # a bound on the event loop: a runaway timer is a bug, not a long run
    scenario: str | None = None  # the file the config came from, for the reproduction command

    def reproduce(self) -> str:
        """The command that runs this very simulation again."""
        scenario = f" --scenario {self.scenario}" if self.scenario else ""
        return f"python -m simulations --seed {self.seed}{scenario}"
