"""Shared pytest fixtures."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from apps import DATABASE_URL_VARIABLE, Site, dialect_name, empty_databases, make_site
from cryptography.fernet import Fernet
from flask import Flask
from flask_mail import Mail
from flask_sqlalchemy import SQLAlchemy

from flask_smtp_accounts import SMTPAccounts
from flask_smtp_accounts.alerts import Alerts
from flask_smtp_accounts.testing import LOGIN, PASSWORD, Certs, SMTPServer, make_certs


# --- the database ---
def pytest_report_header() -> str:
    return f"database: {dialect_name()} (set {DATABASE_URL_VARIABLE} to a URL for another)"


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip the tests of SQLite's own behaviour (files, locks, query plans) on another database."""
    if item.get_closest_marker("sqlite_only") and dialect_name() != "sqlite":
        pytest.skip(f"SQLite only; {DATABASE_URL_VARIABLE} names a {dialect_name()} database")


@pytest.fixture(scope="session", autouse=True)
def _empty_at_start() -> None:
    """Drop what an interrupted run left on a database server."""
    empty_databases()


@pytest.fixture(autouse=True)
def _empty_after_each_test() -> Iterator[None]:
    """Each test starts from empty tables: its sites create them, and they are dropped after it."""
    yield
    empty_databases()


# --- SMTP servers ---
@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """CA, CA-signed, self-signed and wrong-name server certificates (PEM files)."""
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def smtp_server() -> Iterator[SMTPServer]:
    """Plain SMTP, no AUTH."""
    with SMTPServer() as server:
        yield server


@pytest.fixture
def auth_server() -> Iterator[SMTPServer]:
    """Plain SMTP, AUTH required (``LOGIN``/``PASSWORD``)."""
    with SMTPServer(auth=(LOGIN, PASSWORD)) as server:
        yield server


@pytest.fixture
def starttls_server(certs: Certs) -> Iterator[SMTPServer]:
    """STARTTLS required, then AUTH required; certificate signed by ``certs.ca_cert``."""
    with SMTPServer(
        tls="starttls", cert=(certs.server_cert, certs.server_key), auth=(LOGIN, PASSWORD)
    ) as server:
        yield server


@pytest.fixture
def ssl_server(certs: Certs) -> Iterator[SMTPServer]:
    """Implicit TLS, AUTH required; certificate signed by ``certs.ca_cert``."""
    with SMTPServer(tls="ssl", cert=(certs.server_cert, certs.server_key), auth=(LOGIN, PASSWORD)) as server:
        yield server


@pytest.fixture
def selfsigned_server(certs: Certs) -> Iterator[SMTPServer]:
    """STARTTLS required with a self-signed certificate, AUTH required."""
    with SMTPServer(
        tls="starttls", cert=(certs.selfsigned_cert, certs.selfsigned_key), auth=(LOGIN, PASSWORD)
    ) as server:
        yield server


@pytest.fixture
def make_smtp_server() -> Iterator[Callable[..., SMTPServer]]:
    """Factory ``make_smtp_server(**SMTPServer kwargs)`` returning started servers, stopped at teardown."""
    with contextlib.ExitStack() as stack:

        def make(**kwargs: Any) -> SMTPServer:
            return stack.enter_context(SMTPServer(**kwargs))

        yield make


# --- end SMTP servers ---


# --- sites ---
@pytest.fixture
def encryption_key() -> str:
    """A Fernet key made for this test only."""
    return Fernet.generate_key().decode()


@pytest.fixture
def site(tmp_path: Path, encryption_key: str, certs: Certs, smtp_server: SMTPServer) -> Iterator[Site]:
    """A site with the extension enabled; Flask-Mail's own settings point at ``smtp_server``.

    Servers are verified against the test CA (``SMTP_ACCOUNTS_CA_FILE``).
    The test runs inside an app context.
    """
    made = make_site(
        tmp_path / "instance",
        SMTP_ACCOUNTS_ENCRYPTION_KEYS=encryption_key,
        SMTP_ACCOUNTS_CA_FILE=str(certs.ca_cert),
        MAIL_PORT=smtp_server.port,
    )
    with made.app.app_context():
        yield made
        _alert_deliveries_finished()
        made.db.session.remove()
        made.db.engine.dispose()


def _alert_deliveries_finished() -> None:
    """Wait for the alerts' delivery thread: a test may end once the webhook got its post, while the
    thread still writes the alert's status, and the connection it writes with must not outlive the site."""
    for thread in threading.enumerate():
        if thread.name == Alerts.THREAD_NAME:
            thread.join(timeout=30)


@pytest.fixture
def app(site: Site) -> Flask:
    return site.app


@pytest.fixture
def db(site: Site) -> SQLAlchemy:
    return site.db


@pytest.fixture
def mail(site: Site) -> Mail:
    return site.mail


@pytest.fixture
def ext(site: Site) -> SMTPAccounts:
    return site.ext


@pytest.fixture
def add_account(ext: SMTPAccounts) -> Callable[..., Any]:
    """``add_account(server, **fields)``: an account for a test server, saved without a check.

    Security and login follow the server: STARTTLS or implicit TLS, and
    the test credentials when the server requires AUTH.
    """

    def add(server: SMTPServer, **fields: Any) -> Any:
        values: dict[str, Any] = {
            "sender_email": "hello@example.com",
            "host": server.host,
            "port": server.port,
            "security": {"none": "none", "starttls": "starttls", "ssl": "ssl"}[server.tls],
            "auth": "login" if server.credentials else "none",
            "login": LOGIN if server.credentials else "",
        }
        values.update(fields)
        password = values.pop("password", PASSWORD if server.credentials else None)
        return ext.add_account(password=password, check=False, **values)

    return add


# --- admin ---
@pytest.fixture
def admin_site_config() -> dict[str, Any]:
    """Extra app config for ``admin_site``; a test module overrides it when it needs more."""
    return {}


@pytest.fixture
def admin_site(
    tmp_path: Path,
    encryption_key: str,
    certs: Certs,
    smtp_server: SMTPServer,
    admin_site_config: dict[str, Any],
) -> Iterator[Any]:
    """A site with the admin pages mounted and test users (see ``tests/helpers.py``)."""
    from helpers import make_admin_site

    made = make_admin_site(
        tmp_path / "instance",
        SMTP_ACCOUNTS_ENCRYPTION_KEYS=encryption_key,
        SMTP_ACCOUNTS_CA_FILE=str(certs.ca_cert),
        MAIL_PORT=smtp_server.port,
        **admin_site_config,
    )
    yield made
    with made.app.app_context():
        made.site.db.engine.dispose()


# --- browser ---
@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the whole run; Playwright's sync API allows one driver at a time.

    If Chromium cannot start, every browser test fails with the reason.
    """
    from browser import launch_chromium
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()
