"""The senders against real endpoints on 127.0.0.1, and the SMTP and retry settings from the environment."""

import smtplib

import pytest

from actorbatch.actors.senders import notify_options, post_webhook, send_email, smtp_settings
from actorbatch.domain.notifications import RetryPolicy
from actorbatch.errors import InvalidJob
from tests.endpoints import REFUSED, Mailbox, Webhooks, smtp_server, webhook_server


def test_an_e_mail_goes_through_a_login_and_names_its_notification() -> None:
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        settings = smtp_settings(f"smtp://batch:s3cret-pw@127.0.0.1:{port}", "batch@example.com")
        assert settings is not None
        send_email(settings, "alice@example.com", "subject line", "body\n", "n-1")
        with pytest.raises(smtplib.SMTPRecipientsRefused, match="no such mailbox"):
            send_email(settings, REFUSED, "subject", "body\n", "n-2")
    [mail] = mailbox.to("alice@example.com")
    assert (mail["From"], mail["Subject"], mail["Message-ID"]) == ("batch@example.com", "subject line",
                                                                  "<n-1@actorbatch>")
    assert mailbox.logins == ["batch", "batch"]


def test_the_settings_never_show_the_password() -> None:
    settings = smtp_settings("smtp://batch:s3cret-pw@127.0.0.1:2525", "batch@example.com")
    assert settings is not None and settings.password == "s3cret-pw"
    assert "s3cret-pw" not in repr(settings) + settings.shown
    assert settings.shown == "smtp://batch@127.0.0.1:2525"


def test_a_webhook_gets_the_document_and_the_idempotency_key() -> None:
    hooks = Webhooks()
    with webhook_server(hooks) as url:
        post_webhook(f"{url}/done", {"id": "r1"}, "n-1")
        with pytest.raises(OSError, match="Connection refused"):
            post_webhook("http://127.0.0.1:9/nothing", {}, "n-2", timeout_s=2)
    assert hooks.posts == [("/done", "n-1", {"id": "r1"})]


@pytest.mark.parametrize(("url", "sender", "error"), [
    ("smtp://h:25", None, "set both"), (None, "a@b.c", "set both"), ("http://h:25", "a@b.c", "expected smtp://"),
    ("smtp://h", "a@b.c", "expected smtp://"), ("smtp://h:99999", "a@b.c", "expected smtp://"),
    ("smtp://h:25?tls=1", "a@b.c", "expected smtp://"), ("smtp://u:pw@h:25", "nobody", "ACTORBATCH_SMTP_FROM")])
def test_bad_smtp_settings_are_refused_without_showing_the_password(url: str | None, sender: str | None,
                                                                    error: str) -> None:
    with pytest.raises(InvalidJob, match=error) as refused:
        smtp_settings(url, sender)
    assert "pw" not in str(refused.value)


def test_the_environment_gives_starttls_login_and_the_retry_policy() -> None:
    options = notify_options({"ACTORBATCH_SMTP_URL": "smtp://me%40x:p%3Aw@mail.example.com:587?starttls=true",
                              "ACTORBATCH_SMTP_FROM": "batch@example.com", "ACTORBATCH_NOTIFY_RETRY_DELAY": "5s",
                              "ACTORBATCH_NOTIFY_TRIES": "4"})
    smtp = options["smtp"]
    assert (smtp.host, smtp.port, smtp.starttls, smtp.user, smtp.password) == ("mail.example.com", 587, True, "me@x",
                                                                                "p:w")
    assert options["notify_retry"] == RetryPolicy(first_delay_s=5, tries=4)
    assert notify_options({}) == {"smtp": None, "notify_retry": RetryPolicy()}
    for bad in ({"ACTORBATCH_NOTIFY_TRIES": "0"}, {"ACTORBATCH_NOTIFY_TRIES": "x"},
                {"ACTORBATCH_NOTIFY_RETRY_DELAY": "soon"}):
        with pytest.raises(InvalidJob, match="ACTORBATCH_NOTIFY"):
            notify_options(bad)
