"""The example shop, driven as a visitor would, with its own local SMTP servers."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from example_app import create_app
from example_app.demo import (
    MAILBOX_LOGIN,
    NEWSLETTER_LOGIN,
    SECRETS_FILE,
    DemoServers,
    attach_inbox,
    seed_accounts,
)
from flask_smtp_accounts.testing import Received

ROOT = Path(__file__).resolve().parent.parent


def start_shop(instance: Path, servers: DemoServers) -> Flask:
    """What ``python -m example_app`` does, minus the HTTP server."""
    app = create_app(servers.config(), instance_path=instance)
    attach_inbox(app, servers)
    seed_accounts(app, servers)
    return app


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    return tmp_path / "instance"


@pytest.fixture
def servers(instance: Path) -> Iterator[DemoServers]:
    with DemoServers(instance) as started:
        yield started


@pytest.fixture
def shop(instance: Path, servers: DemoServers) -> Flask:
    return start_shop(instance, servers)


@pytest.fixture
def client(shop: Flask) -> FlaskClient:
    return shop.test_client()


def submit(client: FlaskClient, url: str, data: dict[str, str], *, form_url: str | None = None) -> Any:
    """Open the page, take its CSRF token and post the form, following redirects."""
    page = client.get(form_url or url).get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token, page
    return client.post(url, data={"csrf_token": token.group(1), **data}, follow_redirects=True)


def log_in(client: FlaskClient, servers: DemoServers, who: str) -> None:
    password = servers.secrets[f"{who}_password"]
    page = submit(client, "/login", {"email": f"{who}@shop.example", "password": password})
    assert "Log out" in page.get_data(as_text=True)


def body(received: Received) -> str:
    part = received.message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def test_contact_form_goes_through_the_everyday_account(client: FlaskClient, servers: DemoServers) -> None:
    page = submit(
        client, "/contact", {"name": "Vera", "email": "vera@customers.example", "message": "Is it in stock?"}
    )

    letter = servers["mailbox"].server.wait_for(1)[0]
    assert letter.login == MAILBOX_LOGIN
    assert letter.tls
    assert letter.mail_from == "hello@shop.example"
    assert letter.rcpt_tos == ["owner@shop.example"]
    assert letter.message["From"] == "hello@shop.example"
    assert letter.message["Reply-To"] == "Vera <vera@customers.example>"
    assert "Is it in stock?" in body(letter)
    assert servers["newsletter"].server.received == []
    assert servers["relay"].server.received == []

    inbox = page.get_data(as_text=True)
    assert "Thank you, your message was sent to the shop." in inbox
    assert "carried by account 2: hello@shop.example" in inbox
    assert "Rule: the matching account with the largest id" in inbox
    assert "MAIL FROM:&lt;hello@shop.example&gt; RCPT TO: &lt;owner@shop.example&gt;" in inbox


def test_newsletter_goes_through_the_newsletter_account(client: FlaskClient, servers: DemoServers) -> None:
    log_in(client, servers, "editor")
    logins_before = len(servers["newsletter"].server.auth_attempts)  # seeding checked the account once

    page = submit(client, "/newsletter", {"subject": "Spring sale", "body": "Everything half price."})

    letters = servers["newsletter"].server.wait_for(3)
    assert sorted(r for letter in letters for r in letter.rcpt_tos) == [
        "ann@customers.example",
        "bob@customers.example",
        "cy@customers.example",
    ]
    for letter in letters:
        assert letter.login == NEWSLETTER_LOGIN
        assert letter.tls
        assert letter.message["From"] == "Marketing Shop <hello@shop.example>"
        assert letter.message["List-Unsubscribe"].startswith("<http://localhost/unsubscribe/")
        assert letter.message["Subject"] == "Spring sale"
    # One mail.connect() block: one connection and one login for the whole list.
    assert len(servers["newsletter"].server.auth_attempts) == logins_before + 1
    assert servers["mailbox"].server.received == []
    inbox = page.get_data(as_text=True)
    assert "The newsletter went to 3 subscriber(s)." in inbox
    assert inbox.count("carried by account 1: Marketing Shop &lt;hello@shop.example&gt;") == 3
    assert "Rule: bulk letter: the account&#39;s sender name equals the letter&#39;s display name" in inbox


def test_unsubscribe_link_of_a_newsletter(client: FlaskClient, servers: DemoServers) -> None:
    log_in(client, servers, "editor")
    submit(client, "/newsletter", {"subject": "News", "body": "Hello."})
    letter = next(
        r for r in servers["newsletter"].server.wait_for(3) if r.rcpt_tos == ["bob@customers.example"]
    )
    link = letter.message["List-Unsubscribe"].strip("<>").removeprefix("http://localhost")

    # RFC 8058 one-click, as a mail client posts it.
    done = client.post(link, data={"List-Unsubscribe": "One-Click"})

    assert "bob@customers.example</strong> will get no more newsletters" in done.get_data(as_text=True)
    remaining = client.get("/newsletter").get_data(as_text=True)
    assert "Subscribers (2)" in remaining
    assert "bob@customers.example" not in remaining
    assert client.get("/unsubscribe/forged-token").status_code == 404


def test_newsletter_needs_a_login(client: FlaskClient, servers: DemoServers) -> None:
    response = client.get("/newsletter")

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_password_reset_goes_through_flask_mail_own_server(client: FlaskClient, servers: DemoServers) -> None:
    page = submit(client, "/reset", {"email": "editor@shop.example"})

    letter = servers["relay"].server.wait_for(1)[0]
    assert letter.login is None
    assert letter.rcpt_tos == ["editor@shop.example"]
    assert letter.message["From"] == "Example Shop <no-reply@shop.example>"
    assert "carried by Flask-Mail's own MAIL_SERVER (no account)" in page.get_data(as_text=True)
    assert re.search(r'<a href="http://localhost/reset/[^"]+">', page.get_data(as_text=True))
    assert servers["mailbox"].server.received == []

    link = re.search(r"http://localhost(/reset/\S+)", body(letter))
    assert link
    changed = submit(client, link.group(1), {"password": "a-new-password"})
    assert "Your password was changed" in changed.get_data(as_text=True)
    assert "Log out" in submit(
        client, "/login", {"email": "editor@shop.example", "password": "a-new-password"}
    ).get_data(as_text=True)
    # The link is spent once the password changed.
    assert "no longer valid" in client.get(link.group(1), follow_redirects=True).get_data(as_text=True)


def test_reset_for_an_unknown_address_sends_nothing(client: FlaskClient, servers: DemoServers) -> None:
    page = submit(client, "/reset", {"email": "stranger@example.org"})

    assert "If that address has an account" in page.get_data(as_text=True)
    assert all(demo.server.received == [] for demo in servers.servers.values())


def test_an_account_for_no_reply_takes_over_the_reset_letter(
    shop: Flask, client: FlaskClient, servers: DemoServers
) -> None:
    mailbox = servers["mailbox"]
    with shop.app_context():
        shop.extensions["smtp_accounts"].ext.add_account(
            sender_email="no-reply@shop.example",
            host=mailbox.server.host,
            port=mailbox.server.port,
            security="starttls",
            login=mailbox.login,
            password=mailbox.password,
        )

    submit(client, "/reset", {"email": "editor@shop.example"})

    letter = mailbox.server.wait_for(1)[0]
    assert letter.message["From"] == "Example Shop <no-reply@shop.example>"
    assert servers["relay"].server.received == []


def test_a_failed_send_is_shown_to_the_visitor(
    shop: Flask, client: FlaskClient, servers: DemoServers
) -> None:
    servers["mailbox"].server.stop()

    page = submit(
        client, "/contact", {"name": "Vera", "email": "vera@customers.example", "message": "Hello?"}
    )

    text = page.get_data(as_text=True)
    assert "The letter could not be sent: connect failed via account 2" in text
    assert "Contact the shop" in text


def test_a_letter_delivered_by_a_resend_shows_the_route_that_delivered_it(
    shop: Flask, client: FlaskClient, servers: DemoServers
) -> None:
    ext = shop.extensions["smtp_accounts"].ext
    mailbox = servers["mailbox"]
    mailbox.server.stop()
    submit(client, "/contact", {"name": "Vera", "email": "vera@customers.example", "message": "Hello?"})
    mailbox.server.start()  # back, on a new port; saving the account lifts its cool-down
    with shop.app_context():
        ext.update_account(2, port=mailbox.server.port, password=mailbox.password, check=False)
        [failed] = ext.messages(status="failed").items
        ext.resend_message(failed.id)

    inbox = client.get("/inbox").get_data(as_text=True)
    assert "carried by account 2: hello@shop.example" in inbox
    assert "Rule: the matching account with the largest id" in inbox
    assert "Rule: failed" not in inbox and "Not delivered" not in inbox


def test_a_letter_sent_with_routing_off_is_flask_mails_own(
    shop: Flask, client: FlaskClient, servers: DemoServers
) -> None:
    with shop.app_context():
        shop.extensions["smtp_accounts"].ext.update_settings(enabled=False)

    page = submit(
        client, "/contact", {"name": "Vera", "email": "vera@customers.example", "message": "Hello?"}
    )

    servers["relay"].server.wait_for(1)
    inbox = page.get_data(as_text=True)
    assert "an account check's test letter" not in inbox
    assert "carried by Flask-Mail's own MAIL_SERVER (no account)" in inbox
    assert "Rule: routing is disabled in the settings" in inbox


def test_the_reset_page_names_the_account_that_has_the_no_reply_address(
    shop: Flask, client: FlaskClient, servers: DemoServers
) -> None:
    assert "No active SMTP account has that address" in client.get("/reset").get_data(as_text=True)
    mailbox = servers["mailbox"]
    with shop.app_context():
        shop.extensions["smtp_accounts"].ext.add_account(
            sender_email="no-reply@shop.example",
            host=mailbox.server.host,
            port=mailbox.server.port,
            security="starttls",
            login=mailbox.login,
            password=mailbox.password,
            check=False,
        )

    page = client.get("/reset").get_data(as_text=True)

    assert "No active SMTP account has that address" not in page and "No SMTP account" not in page
    assert "Account 3 (no-reply@shop.example) has that address, so it goes out through that account." in page


def test_only_the_admin_opens_the_smtp_admin(client: FlaskClient, servers: DemoServers) -> None:
    accounts = "/admin/smtp-accounts/accounts/"
    assert client.get(accounts).status_code == 403

    log_in(client, servers, "editor")
    assert client.get(accounts).status_code == 403
    submit(client, "/logout", {}, form_url="/")

    log_in(client, servers, "admin")
    page = client.get(accounts)
    assert page.status_code == 200
    assert "Marketing Shop" in page.get_data(as_text=True)
    assert 'href="/inbox"' in page.get_data(as_text=True)


def test_inbox_shows_server_passwords_to_the_admin_only(client: FlaskClient, servers: DemoServers) -> None:
    password = servers["mailbox"].password
    assert password and password not in client.get("/inbox").get_data(as_text=True)

    log_in(client, servers, "admin")

    assert password in client.get("/inbox").get_data(as_text=True)


def test_restart_keeps_the_key_and_repoints_the_accounts(instance: Path) -> None:
    with DemoServers(instance) as first:
        start_shop(instance, first)
        first_port = first["mailbox"].server.port
    with DemoServers(instance) as second:
        assert second["mailbox"].server.port != first_port
        client = start_shop(instance, second).test_client()

        submit(client, "/contact", {"name": "Vera", "email": "vera@customers.example", "message": "Again"})

        assert second["mailbox"].server.wait_for(1)[0].login == MAILBOX_LOGIN
    assert (instance / SECRETS_FILE).stat().st_mode & 0o077 == 0


def test_demo_command_prints_url_and_logins_and_stops_cleanly(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "example_app", "--instance", str(tmp_path / "demo"), "--port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in process.stdout or ():
            lines.put(line.rstrip("\n"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        banner: list[str] = []
        while not banner or banner[-1] != "Press Ctrl+C to stop.":
            try:
                banner.append(lines.get(timeout=60))
            except queue.Empty:
                raise AssertionError(f"no banner; so far: {banner}") from None
        text = "\n".join(banner)
        url = re.search(r"Example shop: (http://127\.0\.0\.1:\d+/)", text)
        assert url, text
        assert re.search(r"Admin login: +admin@shop\.example / \S+", text)
        with urllib.request.urlopen(url.group(1) + "inbox", timeout=30) as response:
            page = response.read().decode()
        assert "Mailbox server" in page
        assert "Newsletter service" in page
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
        reader.join(5)
    assert process.returncode == 0, err
    assert "Stopped." in err
