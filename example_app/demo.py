"""The demo's own machinery: local SMTP servers, throw-away secrets, seeded accounts, the inbox.

Nothing here is part of the extension or needed by a real site. It stands
in for the outside world (a mailbox provider, a newsletter service, the
site's usual relay) so that the example runs with no network, and records
which account carried each letter so that a visitor can see routing work.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
import typing as t
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.fernet import Fernet
from flask import Flask
from flask_mail import email_dispatched

from flask_smtp_accounts import SMTPAccounts, message_sent, send_failed
from flask_smtp_accounts.routing import RULE_DISABLED, RULE_TEXT
from flask_smtp_accounts.testing import Received, SMTPServer, make_certs

SHOP_EMAIL = "hello@shop.example"
NEWSLETTER_NAME = "Marketing Shop"
MAILBOX_LOGIN = SHOP_EMAIL
NEWSLETTER_LOGIN = "shop-newsletter"
SECRETS_FILE = "demo-secrets.json"
CERTS_DIR = "demo-certs"
#: The demo certificates are valid for 30 days; make new ones well before.
CERTS_RENEW_AFTER_S = 20 * 86_400


def load_secrets(instance: Path) -> dict[str, str]:
    """The demo's keys and passwords, made on first use and kept in the instance folder.

    A real site must never keep its encryption key beside its database:
    whoever copies the one then has the other. The demo does it so that it
    runs with one command.
    """
    path = instance / SECRETS_FILE
    if path.exists():
        return t.cast(dict[str, str], json.loads(path.read_text()))
    instance.mkdir(parents=True, exist_ok=True)
    made = {
        "encryption_key": Fernet.generate_key().decode(),
        "secret_key": secrets.token_urlsafe(32),
        "admin_password": secrets.token_urlsafe(9),
        "editor_password": secrets.token_urlsafe(9),
        "mailbox_password": secrets.token_urlsafe(12),
        "newsletter_password": secrets.token_urlsafe(12),
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        json.dump(made, file, indent=2)
    return made


@dataclass
class DemoServer:
    """One local SMTP server and what it stands for."""

    key: str
    title: str
    role: str
    server: SMTPServer
    login: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def security(self) -> str:
        return {"none": "none", "starttls": "STARTTLS", "ssl": "implicit TLS (SSL)"}[self.server.tls]


class DemoServers:
    """The three local servers of the demo, on free ports of 127.0.0.1.

    * ``mailbox``: the shop mailbox's own server (STARTTLS, login);
    * ``newsletter``: a newsletter service (implicit TLS, login);
    * ``relay``: the site's usual Flask-Mail server (``MAIL_SERVER``), plain.

    The TLS certificate is signed by a CA the demo makes (in the instance
    folder); the site trusts that CA through ``SMTP_ACCOUNTS_CA_FILE``, so
    verification stays on.
    """

    def __init__(self, instance: Path) -> None:
        self.instance = instance
        self.secrets = load_secrets(instance)
        self.servers: dict[str, DemoServer] = {}

    @property
    def ca_file(self) -> Path:
        return self.instance / CERTS_DIR / "ca.pem"

    def start(self) -> DemoServers:
        cert = self._certificate()
        mailbox_password = self.secrets["mailbox_password"]
        newsletter_password = self.secrets["newsletter_password"]
        specs = [
            DemoServer(
                "mailbox",
                "Mailbox server",
                "the shop mailbox's own server, for everyday mail",
                SMTPServer(tls="starttls", cert=cert, auth=(MAILBOX_LOGIN, mailbox_password)),
                MAILBOX_LOGIN,
                mailbox_password,
            ),
            DemoServer(
                "newsletter",
                "Newsletter service",
                "a bulk-mail service for the newsletter",
                SMTPServer(tls="ssl", cert=cert, auth=(NEWSLETTER_LOGIN, newsletter_password)),
                NEWSLETTER_LOGIN,
                newsletter_password,
            ),
            DemoServer(
                "relay",
                "Site relay (MAIL_SERVER)",
                "Flask-Mail's own server, for letters no account matches",
                SMTPServer(),
            ),
        ]
        try:
            for spec in specs:
                spec.server.start()
                self.servers[spec.key] = spec
        except BaseException:
            self.stop()
            raise
        return self

    def _certificate(self) -> tuple[Path, Path]:
        """The servers' certificate and key, made again only when missing or getting old."""
        folder = self.instance / CERTS_DIR
        cert, key = folder / "server.pem", folder / "server.key"
        fresh = all(path.exists() for path in (self.ca_file, cert, key)) and (
            time.time() - self.ca_file.stat().st_mtime < CERTS_RENEW_AFTER_S
        )
        if not fresh:
            certs = make_certs(folder)
            cert, key = certs.server_cert, certs.server_key
        return cert, key

    def stop(self) -> None:
        for spec in self.servers.values():
            spec.server.stop()

    def __enter__(self) -> DemoServers:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __getitem__(self, key: str) -> DemoServer:
        return self.servers[key]

    def config(self) -> dict[str, t.Any]:
        """App config pointing Flask-Mail at the relay and trusting the demo CA."""
        return {
            "MAIL_SERVER": self["relay"].server.host,
            "MAIL_PORT": self["relay"].server.port,
            "SMTP_ACCOUNTS_CA_FILE": str(self.ca_file),
        }


def seed_accounts(app: Flask, servers: DemoServers) -> None:
    """The original's example: two accounts with the same email, seeded once.

    The newsletter account is made first, the everyday one second: with the
    larger id, the everyday account is the default for ``hello@shop.example``,
    and only a bulk letter whose sender name is "Marketing Shop" goes through
    the newsletter service. On later starts the servers have new ports, so
    accounts logging in to a demo server are pointed at its current port,
    with their passwords given again.
    """
    ext: SMTPAccounts = app.extensions["smtp_accounts"].ext
    with app.app_context():
        session = app.extensions["smtp_accounts"].db.session
        accounts = session.query(ext.Account).all()
        if not accounts:
            for key, name in (("newsletter", NEWSLETTER_NAME), ("mailbox", "")):
                demo = servers[key]
                ext.add_account(
                    sender_email=SHOP_EMAIL,
                    sender_name=name,
                    host=demo.server.host,
                    port=demo.server.port,
                    security=demo.server.tls,
                    auth="login",
                    login=demo.login,
                    password=demo.password,
                )
            ext.update_settings(enabled=True, test_recipient="owner@shop.example")
            return
        by_login = {demo.login: demo for demo in servers.servers.values() if demo.login}
        for account in accounts:
            current = by_login.get(account.login)
            if (
                current is not None
                and account.host == current.server.host
                and account.port != current.server.port
            ):
                # A new port needs the password again (a stored one never follows a re-pointed account).
                ext.update_account(
                    account.id, port=current.server.port, password=current.password, check=False
                )


@dataclass(frozen=True)
class Route:
    """How the extension routed one letter, as its signals told."""

    account: str | None
    account_id: int | None
    rule: str
    error: str | None = None

    @property
    def reason(self) -> str:
        return RULE_TEXT.get(self.rule, self.rule)


@dataclass
class InboxEntry:
    server: DemoServer
    received: Received
    route: Route | None


class Inbox:
    """What the demo servers received, with the route each letter took."""

    def __init__(self, servers: DemoServers) -> None:
        self.servers = servers
        self._routes: dict[str, Route] = {}
        self._lock = threading.Lock()

    def remember(self, message_id: str, route: Route) -> None:
        with self._lock:
            self._routes.pop(message_id, None)  # a resend counts as the letter's latest news
            self._routes[message_id] = route

    def knows(self, message_id: str) -> bool:
        with self._lock:
            return message_id in self._routes

    def entries(self) -> list[InboxEntry]:
        """Every letter received, newest first."""
        with self._lock:
            routes = dict(self._routes)
        order = {message_id: index for index, message_id in enumerate(routes)}
        found = [
            InboxEntry(demo, received, routes.get(received.message_id or ""))
            for demo in self.servers.servers.values()
            for received in demo.server.received
        ]
        found.sort(
            key=lambda entry: (_sent_at(entry.received), order.get(entry.received.message_id or "", -1)),
            reverse=True,
        )
        return found

    def failures(self) -> list[Route]:
        with self._lock:
            return [route for route in self._routes.values() if route.error]


def _sent_at(received: Received) -> float:
    date = received.message["Date"]
    return date.datetime.timestamp() if date is not None and date.datetime is not None else 0.0


def attach_inbox(app: Flask, servers: DemoServers) -> Inbox:
    """Record the route of every letter the app sends, for the inbox page."""
    inbox = Inbox(servers)
    app.extensions["demo_inbox"] = inbox
    return inbox


def _inbox_of(app: t.Any) -> Inbox | None:
    return t.cast("Inbox | None", getattr(app, "extensions", {}).get("demo_inbox"))


def _on_sent(app: t.Any, *, message_id: str, account: t.Any, rule: str, **extra: t.Any) -> None:
    # By Message-ID, not by message: a letter resent from the message log comes without its Flask-Mail message.
    inbox = _inbox_of(app)
    if inbox is not None:
        inbox.remember(
            message_id, Route(account.label if account else None, account.id if account else None, rule)
        )


def _on_failed(app: t.Any, *, message_id: str, account: t.Any, error: Exception, **extra: t.Any) -> None:
    inbox = _inbox_of(app)
    if inbox is not None:
        inbox.remember(
            message_id,
            Route(account.label if account else None, account.id if account else None, "failed", str(error)),
        )


def _on_dispatched(app: t.Any, *, message: t.Any, **extra: t.Any) -> None:
    """Flask-Mail's own signal: a letter the extension did not route (routing off) went out through MAIL_SERVER."""
    inbox = _inbox_of(app)
    if inbox is not None and not inbox.knows(message.msgId):
        inbox.remember(message.msgId, Route(None, None, RULE_DISABLED))


message_sent.connect(_on_sent, weak=False)
send_failed.connect(_on_failed, weak=False)
email_dispatched.connect(_on_dispatched, weak=False)
