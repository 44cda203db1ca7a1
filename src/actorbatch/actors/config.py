"""A batch server's settings, checked before anything is written: a `server.started` event with a bad value would
stop every reader."""

from dataclasses import field

from actorbatch.actors.senders import SmtpSettings, check_retry
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
from actorbatch.domain.servers import Window, zone
from actorbatch.errors import InvalidJob
from actorbatch.frozen import frozen


@frozen
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
    tick_s: float = 0.25  # the lease manager tries a step an outage cut short again this much later (it
    # otherwise sleeps until its next due moment: a lease running out, a task becoming claimable)
    metrics_port: int | None = None  # --metrics-port: serve Prometheus metrics on this port (0: any free one)
    metrics_host: str = "127.0.0.1"  # --metrics-host
    load_bias: float = 1.0  # --load-bias: 0 = every free thread competes equally; larger = a server busier than
    # a live peer of a task's group holds the task back longer for it (LeaseBehaviour.claims)
    smtp: SmtpSettings | None = None  # where e-mail alerts go (ACTORBATCH_SMTP_URL, _FROM); None: no e-mail
    notify_retry: RetryPolicy = field(default_factory=RetryPolicy)  # how failed e-mails and webhooks are retried

    def __post_init__(self) -> None:
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

    @property
    def most_threads(self) -> int:
        """The most threads any window gives: the size of the worker pool."""
        return max([self.threads, *(w.threads for w in self.windows)])
