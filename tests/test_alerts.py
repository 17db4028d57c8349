"""Alerts: real webhook receivers and SMTP inboxes, throttling shared by two apps on one database."""

from __future__ import annotations

import socket
import typing as t
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from apps import Site, make_site
from flask_mail import Message
from message_rows import add_rows
from receivers import WebhookReceiver

from flask_smtp_accounts import DeliveryError
from flask_smtp_accounts.alert_formats import AlertNote
from flask_smtp_accounts.errors import AlertDeliveryError, InvalidAlertError
from flask_smtp_accounts.models import utcnow
from flask_smtp_accounts.testing import Certs, SMTPServer, free_port
from flask_smtp_accounts.webhooks import WebhookFailed, post_json

RCPT = "bob@example.org"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


def quiet_site(path: Path, key: str, certs: Certs, mail_port: int) -> Site:
    """A site whose alerts go out only when a test (or cron) calls for them: no delivery thread."""
    return make_site(
        path,
        SMTP_ACCOUNTS_ENCRYPTION_KEYS=key,
        SMTP_ACCOUNTS_CA_FILE=str(certs.ca_cert),
        MAIL_PORT=mail_port,
        SMTP_ACCOUNTS_ALERT_THREAD=False,
        MAIL_DEFAULT_SENDER="site@example.com",
    )


@pytest.fixture
def quiet(tmp_path: Path, encryption_key: str, certs: Certs, smtp_server: SMTPServer) -> Iterator[Site]:
    made = quiet_site(tmp_path / "instance", encryption_key, certs, smtp_server.port)
    with made.app.app_context():
        yield made
        made.db.session.remove()  # its connection goes back to the pool before the pool is closed
        made.db.engine.dispose()


def dead_account(site: Site, email: str = "shop@example.com") -> t.Any:
    return site.ext.add_account(
        check=False, sender_email=email, host="127.0.0.1", port=free_port(), security="none", auth="none"
    )


def fail_letter(site: Site, subject: str, sender: str = "shop@example.com") -> None:
    with pytest.raises(DeliveryError):
        site.mail.send(Message(subject, sender=sender, recipients=[RCPT], body="x"))


def statuses(site: Site) -> list[tuple[str, str]]:
    table = site.ext._state.models.Alert.__table__
    with site.ext._state.engine().connect() as conn:
        return [(r.event, r.status) for r in conn.execute(sa.select(table).order_by(table.c.id))]


# --- webhooks -------------------------------------------------------------------------


def test_an_undelivered_letter_reaches_the_webhook_from_the_delivery_thread(
    site: Site, receiver: WebhookReceiver
) -> None:
    site.ext.alerts.add_channel("webhook", url=receiver.url(), format="json")
    account = dead_account(site)
    site.ext.alerts.set_event("account_cooled_down", enabled=False)

    fail_letter(site, "Your order 17")

    post = receiver.next()
    assert post.path == "/hooks/T000/B000/s3cret-token" and post.content_type.startswith("application/json")
    assert post.body["event"] == "letter_undelivered" and post.body["account_id"] == account.id
    assert post.body["title"] == "Letter undelivered"
    assert "'Your order 17' was not delivered through shop@example.com" in post.body["text"]
    assert "connect" in post.body["text"]


@pytest.mark.parametrize(
    ("kind", "shape"),
    [
        ("slack", lambda body: body["text"].startswith("*Test alert*\n")),
        ("discord", lambda body: body["content"].startswith("**Test alert**\n")),
        (
            "teams",
            lambda body: (
                body["type"] == "message"
                and body["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
                and body["attachments"][0]["content"]["body"][0]["text"] == "Test alert"
            ),
        ),
        ("json", lambda body: body["event"] == "test" and body["more"] == 0),
    ],
)
def test_each_kind_of_webhook_gets_the_payload_it_accepts(
    site: Site, receiver: WebhookReceiver, kind: str, shape: t.Any
) -> None:
    channel = site.ext.alerts.add_channel("webhook", url=receiver.url(), format=kind)
    site.ext.alerts.send_test(channel.id)
    assert shape(receiver.next().body)


def test_the_webhook_url_is_stored_encrypted_and_shown_by_its_host_only(
    site: Site, receiver: WebhookReceiver
) -> None:
    url = receiver.url()
    channel = site.ext.alerts.add_channel("webhook", url=url, format="slack")
    table = site.ext._state.models.AlertChannel.__table__
    with site.ext._state.engine().connect() as conn:
        stored = conn.execute(sa.select(table)).mappings().one()
    assert "s3cret-token" not in " ".join(str(v) for v in stored.values())
    assert stored["url_host"] == "127.0.0.1"
    assert "s3cret-token" not in repr(channel) and channel.target == "127.0.0.1"

    site.ext.alerts.update_channel(channel.id, url="")  # a blank field keeps it
    site.ext.alerts.send_test(channel.id)
    assert receiver.next().path == "/hooks/T000/B000/s3cret-token"


def test_a_refusing_or_missing_webhook_is_named_by_its_host(site: Site) -> None:
    with WebhookReceiver(status=500) as refusing:
        channel = site.ext.alerts.add_channel("webhook", url=refusing.url())
        with pytest.raises(AlertDeliveryError) as refused:
            site.ext.alerts.send_test(channel.id)
    assert str(refused.value) == f"alert channel {channel.id}: the webhook at 127.0.0.1 answered HTTP 500"
    gone = site.ext.alerts.add_channel("webhook", url=f"http://127.0.0.1:{free_port()}/hooks/s3cret-token")
    with pytest.raises(AlertDeliveryError) as missing:
        site.ext.alerts.send_test(gone.id)
    assert "the webhook at 127.0.0.1 was not reached" in str(missing.value) and "s3cret" not in str(
        missing.value
    )


@pytest.mark.one_database
def test_a_webhook_that_never_answers_runs_into_the_deadline() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        with pytest.raises(WebhookFailed) as waited:
            post_json(f"http://127.0.0.1:{silent.getsockname()[1]}/s3cret", {"text": "x"}, timeout=0.5)
    assert str(waited.value) == "the webhook at 127.0.0.1 was not reached: timed out"


def test_a_channel_that_cannot_work_is_refused(site: Site) -> None:
    alerts = site.ext.alerts
    cases: list[tuple[str, dict[str, t.Any], str]] = [
        ("webhook", {"url": "ftp://example.com/x"}, "url"),
        ("webhook", {"url": "https://example.com/x", "format": "telegram"}, "format"),
        ("email", {"recipients": "not an address"}, "recipients"),
        ("email", {"recipients": "ops@example.com", "account_id": 99}, "account_id"),
        ("pager", {}, "kind"),
    ]
    for kind, fields, field in cases:
        with pytest.raises(InvalidAlertError) as refused:
            alerts.add_channel(kind, **fields)
        assert refused.value.field == field
    assert alerts.channels() == []


# --- email ------------------------------------------------------------------------------


def test_an_alert_email_goes_through_the_chosen_account_to_a_real_inbox(
    quiet: Site, make_smtp_server: t.Any
) -> None:
    inbox = make_smtp_server()
    ops = quiet.ext.add_account(
        check=False,
        sender_email="ops@example.com",
        sender_name="Ops",
        host=inbox.host,
        port=inbox.port,
        security="none",
        auth="none",
    )
    quiet.ext.alerts.add_channel(
        "email", recipients="admin@example.com, oncall@example.com", account_id=ops.id
    )
    dead_account(quiet)
    quiet.ext.alerts.set_event("account_cooled_down", enabled=False)
    fail_letter(quiet, "Invoice 5")

    assert quiet.ext.alerts.deliver_pending().sent == 1
    [letter] = inbox.wait_for(1)
    assert letter.message["From"] == "Ops <ops@example.com>"
    assert sorted(letter.message["To"].split(", ")) == [
        "admin@example.com",
        "oncall@example.com",
    ]  # Flask-Mail: a set
    assert letter.message["Subject"].startswith(
        "[Letter undelivered] The letter 'Invoice 5' was not delivered"
    )


def test_an_alert_email_can_go_with_flask_mails_own_settings(quiet: Site, smtp_server: SMTPServer) -> None:
    channel = quiet.ext.alerts.add_channel("email", recipients="admin@example.com")
    quiet.ext.alerts.send_test(channel.id)
    [letter] = smtp_server.wait_for(1)
    assert letter.message["From"] == "site@example.com"
    assert (
        letter.message["Subject"]
        == "[Test alert] This is a test alert from flask-smtp-accounts: the channel works."
    )


def test_an_alert_through_the_failing_account_does_not_alert_about_itself(quiet: Site) -> None:
    account = dead_account(quiet)
    quiet.ext.update_settings(cooldown_s=0)
    quiet.ext.alerts.add_channel("email", recipients="admin@example.com", account_id=account.id)
    fail_letter(quiet, "Invoice 6")

    report = quiet.ext.alerts.deliver_pending()

    assert report.sent == 0 and "the alert letter was not sent" in report.failed[0]
    assert statuses(quiet) == [("letter_undelivered", "pending")], (
        "no alert about the alert; the first waits for a retry"
    )


# --- throttling ---------------------------------------------------------------------------


def test_two_apps_on_one_database_send_one_alert_per_window_and_count_the_rest(
    tmp_path: Path, encryption_key: str, certs: Certs, smtp_server: SMTPServer, receiver: WebhookReceiver
) -> None:
    first = quiet_site(tmp_path / "shared", encryption_key, certs, smtp_server.port)
    second = quiet_site(tmp_path / "shared", encryption_key, certs, smtp_server.port)
    with first.app.app_context():
        first.ext.alerts.add_channel("webhook", url=receiver.url())
        first.ext.alerts.set_event("account_cooled_down", enabled=False)
        first.ext.alerts.set_event("letter_undelivered", throttle_minutes=30)
        first.ext.update_settings(cooldown_s=0)
        dead_account(first)
        fail_letter(first, "one")
        assert first.ext.alerts.deliver_pending().sent == 1
        fail_letter(first, "two")
    with second.app.app_context():
        fail_letter(second, "three")
        assert second.ext.alerts.deliver_pending().held == 1
    with first.app.app_context():
        assert first.ext.alerts.deliver_pending().held == 1
        fail_letter(first, "four")
    with second.app.app_context():
        later = utcnow() + timedelta(minutes=31)
        report = second.ext.alerts.deliver_pending(later)

    assert (report.sent, report.merged) == (1, 2)
    posts = receiver.received()
    assert ["'one'" in p.body["text"] for p in posts] == [True, False]
    assert "'four'" in posts[1].body["text"] and posts[1].body["more"] == 2
    assert "(and 2 more since " in posts[1].body["text"]
    for site in (first, second):
        with site.app.app_context():
            site.db.session.remove()
            site.db.engine.dispose()


# --- the other events ----------------------------------------------------------------------


def test_an_account_entering_cool_down_alerts(quiet: Site, receiver: WebhookReceiver) -> None:
    quiet.ext.alerts.add_channel("webhook", url=receiver.url())
    quiet.ext.alerts.set_event("letter_undelivered", enabled=False)
    quiet.ext.update_settings(cooldown_s=300)
    dead_account(quiet)
    fail_letter(quiet, "x")
    quiet.ext.alerts.deliver_pending()
    [post] = receiver.received()
    assert post.body["event"] == "account_cooled_down"
    assert post.body["text"].startswith("shop@example.com is skipped for 300 s after a connection failure")


def test_a_refused_oauth2_token_alerts_with_the_fix(
    quiet: Site, receiver: WebhookReceiver, certs: Certs
) -> None:
    from flask_smtp_accounts.oauth2 import MICROSOFT_APP_SCOPE
    from flask_smtp_accounts.testing import LOGIN
    from flask_smtp_accounts.testing.oauth import CLIENT_ID, CLIENT_SECRET, OAuthServer

    quiet.ext.alerts.add_channel("webhook", url=receiver.url())
    quiet.ext.alerts.set_event("letter_undelivered", enabled=False)
    quiet.ext.alerts.set_event("account_cooled_down", enabled=False)
    with (
        OAuthServer() as provider,
        SMTPServer(
            tls="starttls", cert=(certs.server_cert, certs.server_key), xoauth2=provider.xoauth2
        ) as smtp,
    ):
        quiet.ext.add_account(
            check=False,
            sender_email="hello@example.com",
            host=smtp.host,
            port=smtp.port,
            security="starttls",
            auth="oauth2",
            login=LOGIN,
            oauth_provider="custom",
            oauth_flow="app",
            oauth_token_url=provider.token_url,
            oauth_scope=MICROSOFT_APP_SCOPE,
            oauth_client_id=CLIENT_ID,
            oauth_client_secret=CLIENT_SECRET,
        )
        provider.failing = "bad_secret"
        fail_letter(quiet, "x", sender="hello@example.com")
    quiet.ext.alerts.deliver_pending()
    [post] = receiver.received()
    assert post.body["event"] == "oauth_token_refused"
    assert "The OAuth2 token of hello@example.com was refused" in post.body["text"]
    assert "client secret" in post.body["text"]


def test_a_queue_backlog_alerts_from_the_periodic_check(quiet: Site, receiver: WebhookReceiver) -> None:
    quiet.ext.alerts.add_channel("webhook", url=receiver.url())
    quiet.ext.alerts.set_event("queue_backlog", threshold_minutes=20)
    now = utcnow()
    add_rows(quiet.ext, [{"status": "queued", "created_at": now - timedelta(minutes=5)}])
    assert quiet.ext.alerts.check().sent == 0
    add_rows(quiet.ext, [{"status": "queued", "created_at": now - timedelta(minutes=25)}])
    assert quiet.ext.alerts.check().sent == 1
    [post] = receiver.received()
    assert post.body["event"] == "queue_backlog"
    assert post.body["text"].startswith("2 letter(s) wait in the retry queue; the oldest since")


def test_a_switched_off_event_or_no_channel_records_nothing(quiet: Site, receiver: WebhookReceiver) -> None:
    dead_account(quiet)
    fail_letter(quiet, "no channel yet")
    quiet.ext.alerts.add_channel("webhook", url=receiver.url())
    quiet.ext.alerts.set_event("letter_undelivered", enabled=False)
    quiet.ext.alerts.set_event("account_cooled_down", enabled=False)
    fail_letter(quiet, "switched off")
    assert statuses(quiet) == []


@pytest.mark.one_database
def test_the_note_counts_what_was_held_back() -> None:
    at = utcnow().replace(year=2026, month=5, day=4, hour=10, minute=5)
    note = AlertNote("x", "T", "Letter failed", 1, at, more=12, since=at)
    assert note.line == "Letter failed (and 12 more since 2026-05-04 10:05 UTC)"
