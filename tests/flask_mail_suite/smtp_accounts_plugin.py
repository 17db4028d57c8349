"""A pytest plugin that runs Flask-Mail's own test suite with flask-smtp-accounts on every app.

``scripts/flask-mail-tests`` loads it (``-p smtp_accounts_plugin``) into a
run of Flask-Mail's ``tests/``. Those tests build their app and their
``Mail`` in fixtures named ``app`` and ``mail`` (Flask-Mail's
``tests/conftest.py``); a conftest fixture outranks a plugin's of the same
name, so this plugin does not replace them: an autouse fixture takes what
they built and adds what a site using the extension has, Flask-SQLAlchemy
(a SQLite file in the test's own temporary folder) and
``SMTPAccounts(app, db=db)``. With ``--smtp-accounts-routing on`` (the
default) routing is enabled and an account exists for the app's default
sender, on a real local SMTP server, so that Flask-Mail's letters are
really routed; ``off`` installs the extension with routing disabled.
The summary at the end says how many letters took which way, so that a
green run cannot hide a routing that never ran.
"""

from __future__ import annotations

import collections
import typing as t
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_smtp_accounts import SMTPAccounts, message_sent
from flask_smtp_accounts.testing import SMTPServer

ROUTING = "--smtp-accounts-routing"
#: Which way each letter went in the whole run: through an account, or through Flask-Mail's settings.
_routes: collections.Counter[str] = collections.Counter()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        ROUTING,
        choices=("on", "off"),
        default="on",
        help="flask-smtp-accounts routing on every app (default on)",
    )


def pytest_report_header(config: pytest.Config) -> str:
    return f"flask-smtp-accounts installed on every app, routing {config.getoption(ROUTING)}"


@pytest.fixture(scope="session")
def smtp_accounts_server() -> Iterator[SMTPServer]:
    """The server the default sender's account points at."""
    with SMTPServer() as server:
        yield server


def _count_route(sender: Flask, *, account: t.Any = None, suppressed: bool = False, **_: t.Any) -> None:
    way = "through an account" if account is not None else "through Flask-Mail's settings"
    _routes[f"{way}{' (suppressed)' if suppressed else ''}"] += 1


@pytest.fixture(autouse=True)
def smtp_accounts_on_every_app(
    request: pytest.FixtureRequest, tmp_path: Path, smtp_accounts_server: SMTPServer
) -> Iterator[SMTPAccounts | None]:
    """The extension on the test's app, after Flask-Mail's own ``app`` and ``mail`` fixtures built it."""
    if "mail" not in request.fixturenames:
        yield None
        return
    app: Flask = request.getfixturevalue("app")
    request.getfixturevalue("mail")  # Flask-Mail on the app, before the extension
    app.config.update(
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'site.sqlite'}",
        SMTP_ACCOUNTS_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        SMTP_ACCOUNTS_REGISTER_CLI=False,
    )
    db = SQLAlchemy(app)
    extension = SMTPAccounts(app, db=db)
    with app.app_context():
        db.create_all()
        extension.update_settings(enabled=request.config.getoption(ROUTING) == "on")
        extension.add_account(
            check=False,
            sender_email=app.config["MAIL_DEFAULT_SENDER"],
            host=smtp_accounts_server.host,
            port=smtp_accounts_server.port,
            security="none",
            auth="none",
        )
    with message_sent.connected_to(_count_route, sender=app):
        yield extension
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def pytest_terminal_summary(terminalreporter: t.Any) -> None:
    routes = ", ".join(f"{count} {way}" for way, count in sorted(_routes.items())) or "none"
    terminalreporter.write_line(f"flask-smtp-accounts: letters sent (message_sent): {routes}")
