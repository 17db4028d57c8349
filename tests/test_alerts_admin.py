"""The alerts page and the command line: thin layers over ``smtp_accounts.alerts``."""

from __future__ import annotations

import re
import typing as t
from datetime import timedelta

import pytest
from flask_mail import Message
from helpers import AdminSite
from message_rows import add_rows
from receivers import WebhookReceiver
from test_admin import csrf_token, text_of

from flask_smtp_accounts import DeliveryError
from flask_smtp_accounts.models import utcnow
from flask_smtp_accounts.testing import SMTPServer, free_port

ALERTS = "/admin/smtp-accounts/alerts/"


@pytest.fixture
def receiver() -> t.Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


def client_for(site: AdminSite, user: str = "admin") -> t.Any:
    client = site.app.test_client()
    client.get(f"/test-login/{user}")
    return client


def test_a_webhook_added_on_the_page_is_never_shown_again_and_the_test_button_reaches_it(
    admin_site: AdminSite, receiver: WebhookReceiver
) -> None:
    client = client_for(admin_site)
    token = csrf_token(client.get(ALERTS).get_data(as_text=True))
    added = client.post(
        ALERTS + "channels/add",
        data={
            "csrf_token": token,
            "kind": "webhook",
            "url": receiver.url(),
            "format": "slack",
            "recipients": "",
            "account": "",
        },
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "The alert channel was added." in text_of(added)
    assert "s3cret-token" not in added and "127.0.0.1" in text_of(added)
    assert re.search(r'<input[^>]*name="url"[^>]*>', added) and 'value="http' not in added

    tested = client.post(ALERTS + "channels/1/test", data={"csrf_token": token}, follow_redirects=True)
    assert "A test alert was sent to 127.0.0.1." in text_of(tested.get_data(as_text=True))
    assert receiver.next().body["text"].startswith("*Test alert*")

    removed = client.post(ALERTS + "channels/1/remove", data={"csrf_token": token}, follow_redirects=True)
    assert "No channel yet: alerts are not sent." in text_of(removed.get_data(as_text=True))


def test_changing_a_webhook_with_a_blank_url_keeps_the_stored_one(
    admin_site: AdminSite, receiver: WebhookReceiver
) -> None:
    with admin_site.app.app_context():
        channel = admin_site.ext.alerts.add_channel("webhook", url=receiver.url(), format="json")
    client = client_for(admin_site)
    form_page = client.get(ALERTS + f"?edit={channel.id}").get_data(as_text=True)
    assert "Change channel 1" in text_of(form_page)
    assert "Leave it blank to keep the stored URL (of 127.0.0.1); it is never shown again." in text_of(
        form_page
    )
    assert "s3cret-token" not in form_page
    saved = client.post(
        ALERTS + f"channels/{channel.id}/edit",
        data={"csrf_token": csrf_token(form_page), "kind": "webhook", "url": "", "format": "discord"},
        follow_redirects=True,
    )
    assert "The alert channel was saved." in text_of(saved.get_data(as_text=True))
    with admin_site.app.app_context():
        admin_site.ext.alerts.send_test(channel.id)
    post = receiver.next()
    assert post.path == "/hooks/T000/B000/s3cret-token" and post.body["content"].startswith("**Test alert**")


def test_a_bad_channel_is_marked_and_a_failed_test_says_why_by_host(admin_site: AdminSite) -> None:
    client = client_for(admin_site)
    token = csrf_token(client.get(ALERTS).get_data(as_text=True))
    refused = client.post(
        ALERTS + "channels/add",
        data={
            "csrf_token": token,
            "kind": "email",
            "url": "",
            "format": "json",
            "recipients": "not an address",
            "account": "",
        },
    ).get_data(as_text=True)
    assert "The channel was not saved: correct the marked field." in text_of(refused)
    assert "One or more email addresses, separated by commas." in text_of(refused)

    with admin_site.app.app_context():
        admin_site.ext.alerts.add_channel("webhook", url=f"http://127.0.0.1:{free_port()}/hooks/s3cret-token")
    page = client.post(
        ALERTS + "channels/1/test", data={"csrf_token": token}, follow_redirects=True
    ).get_data(as_text=True)
    assert "The test alert was not delivered: the webhook at 127.0.0.1 was not reached" in text_of(page)
    assert "s3cret-token" not in page


def test_events_are_switched_and_throttled_from_the_page(admin_site: AdminSite) -> None:
    client = client_for(admin_site)
    token = csrf_token(client.get(ALERTS).get_data(as_text=True))
    form = {
        "csrf_token": token,
        "letter_undelivered-enabled": "y",
        "letter_undelivered-throttle": "15",
        "queue_backlog-enabled": "y",
        "queue_backlog-throttle": "60",
        "queue_backlog-threshold": "45",
    }
    for event in ("account_cooled_down", "oauth_token_refused", "quota_reached"):
        form[f"{event}-throttle"] = "60"
    page = client.post(ALERTS + "events", data=form, follow_redirects=True).get_data(as_text=True)
    assert "The alert events were saved." in text_of(page)
    with admin_site.app.app_context():
        settings = {s.event: s for s in admin_site.ext.alerts.event_settings()}
    assert (settings["letter_undelivered"].enabled, settings["letter_undelivered"].throttle_minutes) == (
        True,
        15,
    )
    assert settings["account_cooled_down"].enabled is False
    assert settings["queue_backlog"].threshold_minutes == 45

    form["letter_undelivered-throttle"] = "-1"
    page = client.post(ALERTS + "events", data=form, follow_redirects=True).get_data(as_text=True)
    assert "A whole number of minutes from 0 to 10080." in text_of(page)


def test_the_alerts_page_needs_manage_settings_and_a_token(admin_site: AdminSite) -> None:
    assert client_for(admin_site, "reader").get(ALERTS).status_code == 403
    assert client_for(admin_site, "nobody").post(ALERTS + "channels/add").status_code == 403
    page = (
        client_for(admin_site)
        .post(
            ALERTS + "channels/add",
            data={"kind": "email", "recipients": "a@example.com"},
            follow_redirects=True,
        )
        .get_data(as_text=True)
    )
    assert "the form lacked its security token" in text_of(page)
    with admin_site.app.app_context():
        assert admin_site.ext.alerts.channels() == []


# --- command line ---------------------------------------------------------------------------


def cli(site: AdminSite, *args: str, **kwargs: t.Any) -> t.Any:
    return site.app.test_cli_runner().invoke(args=["smtp-accounts", *args], **kwargs)


def test_alerts_from_the_command_line(admin_site: AdminSite, receiver: WebhookReceiver) -> None:
    added = cli(
        admin_site,
        "alerts",
        "add",
        "webhook",
        "--format",
        "discord",
        "--url-env",
        "HOOK",
        env={"HOOK": receiver.url()},
    )
    assert added.exit_code == 0, added.output
    assert added.output == "Added alert channel 1: webhook to 127.0.0.1.\n"
    prompted = cli(admin_site, "alerts", "add", "webhook", input=receiver.url() + "\n")
    assert "s3cret-token" not in prompted.output and "Added alert channel 2" in prompted.output
    email = cli(admin_site, "alerts", "add", "email", "--to", "ops@example.com,cto@example.com")
    assert email.output == "Added alert channel 3: email to ops@example.com, cto@example.com.\n"

    listed = cli(admin_site, "alerts", "list").output
    assert "s3cret-token" not in listed
    assert re.search(r"1\s+webhook\s+discord\s+127\.0\.0\.1", listed)
    assert re.search(r"queue_backlog\s+yes\s+60\s+30", listed)

    assert cli(admin_site, "alerts", "test", "1").output == "A test alert was sent to 127.0.0.1.\n"
    assert receiver.next().body["content"].startswith("**Test alert**")
    assert cli(admin_site, "alerts", "remove", "2").exit_code == 0
    assert cli(admin_site, "alerts", "remove", "3").exit_code == 0
    missing = cli(admin_site, "alerts", "remove", "2")
    assert missing.exit_code == 1 and "There is no alert channel with id 2." in missing.stderr
    bad = cli(admin_site, "alerts", "add", "email", "--to", "nobody")
    assert bad.exit_code == 1 and "recipients:" in bad.stderr


def test_alerts_check_sends_a_backlog_alert_for_cron(
    admin_site: AdminSite, receiver: WebhookReceiver
) -> None:
    with admin_site.app.app_context():
        admin_site.ext.alerts.add_channel("webhook", url=receiver.url())
        add_rows(admin_site.ext, [{"status": "queued", "created_at": utcnow() - timedelta(hours=2)}])
    result = cli(admin_site, "alerts", "check")
    assert result.output == "Alerts: 1 sent (0 counted into them), 0 held back by the throttle.\n"
    assert receiver.next().body["event"] == "queue_backlog"
    still = cli(admin_site, "alerts", "check").output  # the backlog is still there: noticed again, held back
    assert still == "Alerts: 0 sent (0 counted into them), 1 held back by the throttle.\n"


# --- weekly summary --------------------------------------------------------------------------


def test_the_summary_prints_per_account_counts_and_top_errors(
    admin_site: AdminSite, smtp_server: SMTPServer
) -> None:
    with admin_site.app.app_context():
        shop = admin_site.ext.add_account(
            check=False,
            sender_email="shop@example.com",
            host="127.0.0.1",
            port=free_port(),
            security="none",
            auth="none",
        )
        admin_site.ext.update_settings(cooldown_s=0)
        for subject in ("a", "b"):
            with pytest.raises(DeliveryError):
                admin_site.site.mail.send(
                    Message(subject, sender="shop@example.com", recipients=["x@example.org"], body="x")
                )
        now = utcnow()
        add_rows(
            admin_site.ext,
            [{"status": "sent", "account_id": shop.id, "created_at": now - timedelta(days=1)}] * 3
            + [
                {
                    "status": "failed",
                    "account_id": shop.id,
                    "created_at": now - timedelta(days=2),
                    "error": "550 no such user",
                }
            ]
            + [{"status": "sent", "account_id": None, "created_at": now - timedelta(days=3)}]
            + [{"status": "sent", "account_id": shop.id, "created_at": now - timedelta(days=9)}] * 7,
        )

    printed = cli(admin_site, "summary").output
    lines = printed.splitlines()
    assert lines[0].startswith("Mail from ") and lines[0].endswith(" UTC (7 days)")
    assert "Flask-Mail's own settings: 1 sent, 0 failed, 0 queued" in lines
    assert "shop@example.com: 3 sent, 3 failed, 0 queued" in lines
    assert any(line.startswith("    2 x connect failed via account 1") for line in lines)
    assert "    1 x 550 no such user" in lines
    assert lines[-1] == "Total: 4 sent, 3 failed, 0 queued"
    assert "shop@example.com: 10 sent" in cli(admin_site, "summary", "--days", "30").output


def test_the_summary_is_mailed_with_send(admin_site: AdminSite, smtp_server: SMTPServer) -> None:
    admin_site.app.extensions["mail"].default_sender = "site@example.com"
    nowhere = cli(admin_site, "summary", "--send")
    assert nowhere.exit_code == 2 and "--to ADDRESS" in nowhere.output
    sent = cli(admin_site, "summary", "--send", "--to", "owner@example.com")
    assert sent.output == "The summary of 7 days was sent to owner@example.com.\n"
    [letter] = smtp_server.wait_for(1)
    assert letter.message["Subject"] == "Mail summary: 0 sent, 0 failed in 7 days"
    assert letter.message["To"] == "owner@example.com"
    assert "No letters were sent." in letter.message.get_payload()
