"""How a notification leaves the process: an e-mail through an SMTP server (smtplib), a webhook by an HTTP POST
(urllib). Both raise on any failure; the notifier records the error and retries. The SMTP password is held out of
every repr and message."""

import json
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from actorbatch.clock import Clock
from actorbatch.domain.alerts import email_text
from actorbatch.domain.durations import parse_duration_s
from actorbatch.domain.limits import MAX_DURATION_S, MAX_RETRIES, MAX_USER_CHARS, check_count, check_number, check_text
from actorbatch.domain.notifications import Notification, RetryPolicy, notification_ids
from actorbatch.domain.quarantine import describe
from actorbatch.domain.runs import Run
from actorbatch.errors import InvalidJob
from actorbatch.frozen import frozen
from actorbatch.node.notify import MAX_IN_FLIGHT, Delivered, Delivery
from actorbatch.node.ports import EventLog
from actorbatch.projections.documents import run_detail

log = logging.getLogger(__name__)
SEND_TIMEOUT_S = 20.0  # connecting, and each exchange after it; well inside the default lease timeout (30 s)
SMTP_URL_FORM = "smtp://[user:password@]host:port[?starttls=true]"


@frozen
class SmtpSettings:
    """Where e-mail goes: `ACTORBATCH_SMTP_URL` and `ACTORBATCH_SMTP_FROM`, parsed."""

    host: str
    port: int
    sender: str
    starttls: bool = False
    user: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def shown(self) -> str:
        """The URL without its password, for the logs and messages."""
        login = f"{self.user}@" if self.user else ""
        return f"smtp://{login}{self.host}:{self.port}" + ("?starttls=true" if self.starttls else "")


def smtp_settings(url: str | None, sender: str | None) -> SmtpSettings | None:
    """The SMTP settings from the two variables (None if neither is set); InvalidJob, naming the variable and never
    the password, if they are wrong."""
    if not url and not sender:
        return None
    if not url or not sender:
        raise InvalidJob("ACTORBATCH_SMTP_URL and ACTORBATCH_SMTP_FROM: set both to send e-mail, or neither")
    check_text(url, "ACTORBATCH_SMTP_URL", 2048)
    sender = check_text(sender, "ACTORBATCH_SMTP_FROM", MAX_USER_CHARS)
    if "@" not in sender or any(c.isspace() or c in "<>,;" for c in sender):
        raise InvalidJob("ACTORBATCH_SMTP_FROM: expected an address like batch@example.com")
    parts = urlsplit(url)
    wrong = InvalidJob(f"ACTORBATCH_SMTP_URL: expected {SMTP_URL_FORM}")
    try:
        port = parts.port
    except ValueError:
        raise wrong from None
    if parts.scheme != "smtp" or not parts.hostname or port is None or parts.path not in ("", "/"):
        raise wrong
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    if set(options) - {"starttls"} or options.get("starttls", "false") not in ("true", "false"):
        raise wrong
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    return SmtpSettings(parts.hostname, port, sender, options.get("starttls") == "true", user, password)


def notify_options(environ: Mapping[str, str]) -> dict[str, Any]:
    """ServerConfig's `smtp` and `notify_retry` from the environment: ACTORBATCH_SMTP_URL, ACTORBATCH_SMTP_FROM,
    ACTORBATCH_NOTIFY_RETRY_DELAY (the first retry's delay, doubling up to an hour) and ACTORBATCH_NOTIFY_TRIES."""
    default = RetryPolicy()
    delay = environ.get("ACTORBATCH_NOTIFY_RETRY_DELAY")
    tries = environ.get("ACTORBATCH_NOTIFY_TRIES")
    first_delay_s = default.first_delay_s if not delay else parse_duration_s(delay, "ACTORBATCH_NOTIFY_RETRY_DELAY")
    if tries and not tries.isdigit():
        raise InvalidJob(f"ACTORBATCH_NOTIFY_TRIES: expected a whole number from 1 to {MAX_RETRIES}")
    retry = RetryPolicy(first_delay_s=first_delay_s, max_delay_s=max(first_delay_s, default.max_delay_s),
                        tries=int(tries) if tries else default.tries)
    return {"smtp": smtp_settings(environ.get("ACTORBATCH_SMTP_URL"), environ.get("ACTORBATCH_SMTP_FROM")),
            "notify_retry": check_retry(retry)}


def check_retry(retry: object) -> RetryPolicy:
    if not isinstance(retry, RetryPolicy):
        raise InvalidJob(f"notify_retry: expected a RetryPolicy, got {retry!r}")
    check_number(retry.first_delay_s, "ACTORBATCH_NOTIFY_RETRY_DELAY", 0.001, MAX_DURATION_S, unit="s")
    check_number(retry.max_delay_s, "notify_retry.max_delay_s", retry.first_delay_s, MAX_DURATION_S, unit="s")
    check_count(retry.tries, "ACTORBATCH_NOTIFY_TRIES", 1, MAX_RETRIES)
    return retry


def send_email(settings: SmtpSettings, to: str, subject: str, body: str, message_id: str,
               timeout_s: float = SEND_TIMEOUT_S) -> None:
    """One e-mail, through STARTTLS and a login if the settings say so. `message_id` is the notification's: a
    receiver can tell the same announcement from another."""
    import smtplib  # the mail and TLS modules load when a first e-mail is sent, not with every server
    import ssl
    from email.message import EmailMessage
    from email.utils import formatdate

    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = settings.sender, to, subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = f"<{message_id}@actorbatch>"
    message.set_content(body)
    with smtplib.SMTP(settings.host, settings.port, timeout=timeout_s) as smtp:
        if settings.starttls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.user is not None:
            smtp.login(settings.user, settings.password or "")
        smtp.send_message(message)


def post_webhook(url: str, document: Any, delivery_id: str, timeout_s: float = SEND_TIMEOUT_S) -> None:
    """POST `document` as JSON; any answer but 2xx raises. `Idempotency-Key` is the notification's id."""
    import urllib.request  # loaded when a first webhook is posted, not with every server

    request = urllib.request.Request(  # noqa: S310 - the URL was checked to be http(s) when the job was added
        url, data=json.dumps(document).encode(), method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "actorbatch", "Idempotency-Key": delivery_id})
    with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - as above
        if not 200 <= response.status < 300:
            raise OSError(f"HTTP {response.status}")


class ThreadSenders:
    """Sends on a small thread pool, never in the actor: a slow SMTP server delays only its own deliveries."""

    def __init__(self, smtp: SmtpSettings | None, store: EventLog, clock: Clock) -> None:
        self.smtp, self.store, self.clock = smtp, store, clock
        self.channels: tuple[str, ...] = ("webhook", "email") if smtp is not None else ("webhook",)
        self._pool = ThreadPoolExecutor(MAX_IN_FLIGHT, thread_name_prefix="actorbatch-notify")

    def send(self, delivery: Delivery, report: Callable[[Delivered], None]) -> None:
        self._pool.submit(self._send, delivery, report)

    def stop(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _send(self, delivery: Delivery, report: Callable[[Delivered], None]) -> None:
        n = delivery.notification
        try:
            if n.channel == "email":
                assert self.smtp is not None
                subject, body = email_text(n.job, str(n.run_id), n.run_status, n.failed, n.more_failed,
                                           n.started_at, n.ended_at)
                send_email(self.smtp, n.recipient, subject, body, str(n.id))
            else:
                post_webhook(n.recipient, self._document(n), str(n.id))
            error = None
        except Exception as failure:  # noqa: BLE001 - whatever went wrong is recorded, and retried
            error = describe(failure)
            log.info("%s to %s failed: %s", n.channel, n.recipient, error)
        report(Delivered(n.id, delivery.attempt, error))

    def _document(self, notification: Notification) -> dict[str, Any]:
        """The run as `run show --json` shows it, read from the log (the read models may lag)."""
        run = self.store.load(Run, notification.run_id)
        assert run is not None and run.definition is not None
        ids = notification_ids(run.id, run.user, run.definition.notify)
        notifications = [n for n in (self.store.load(Notification, i) for i in ids) if n is not None]
        return run_detail(run, self.clock.now(), notifications)
