"""The Flask apps, letters and account tables that the benchmark sends through.

Every app lives in its own folder under one temporary directory (instance
folder and, by default, its SQLite file; see ``databases.py``). One ``SQLAlchemy``, one ``Mail`` and one
``SMTPAccounts`` serve every app, as they would in an app factory.
"""

from __future__ import annotations

import contextlib
import os
import typing as t
from datetime import datetime

import flask_mail
from cryptography.fernet import Fernet
from flask import Flask
from flask_mail import Mail, Message
from flask_sqlalchemy import SQLAlchemy

from flask_smtp_accounts import SMTPAccounts

#: Flask-Mail's own connection class, taken before any app installs the routed one.
GENUINE_CONNECTION = flask_mail.Connection

SENDER = ("News", "news@example.com")
RECIPIENT = "reader@example.org"
SUBJECT = "This week's newsletter"
#: About 2 KB of plain text in lines of at most 76 characters.
BODY = "\n".join(
    [
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor"[: 72 - (i % 5)]
        for i in range(27)
    ]
)

db = SQLAlchemy()
mail = Mail()
smtp_accounts = SMTPAccounts(db=db)
_key = Fernet.generate_key().decode()


def letter() -> Message:
    """One newsletter letter: the same text, sender and recipient every time."""
    return Message(SUBJECT, sender=SENDER, recipients=[RECIPIENT], body=BODY)


def _base_app(folder: str, sink_host: str, sink_port: int, config: t.Mapping[str, t.Any]) -> Flask:
    os.makedirs(folder, exist_ok=True)
    app = Flask(f"bench_{os.path.basename(folder)}", instance_path=os.path.join(folder, "instance"))
    app.config.update(
        MAIL_SERVER=sink_host,
        MAIL_PORT=sink_port,
        MAIL_USE_TLS=False,
        MAIL_USE_SSL=False,
        MAIL_SUPPRESS_SEND=False,
        TESTING=False,
    )
    app.config.update(config)
    mail.init_app(app)
    return app


def plain_app(folder: str, sink_host: str, sink_port: int, **config: t.Any) -> Flask:
    """Flask-Mail alone, sending to the sink; use it inside :func:`genuine_flask_mail`.

    ``config``: more of Flask-Mail's settings (``MAIL_USE_TLS``, ``MAIL_USERNAME``...).
    """
    return _base_app(folder, sink_host, sink_port, config)


def routed_app(
    folder: str,
    sink_host: str,
    sink_port: int,
    *,
    database: t.Mapping[str, t.Any],
    account: t.Mapping[str, t.Any] | None = None,
    config: t.Mapping[str, t.Any] | None = None,
    **settings: t.Any,
) -> Flask:
    """Flask-Mail plus the extension, routing :data:`SENDER` through one account on the sink.

    ``database``: the Flask-SQLAlchemy settings of an empty database (``databases.Databases.config``).
    ``account``: the account's fields besides its address, host and port (default: no TLS, no AUTH);
    ``{}`` leaves the accounts table empty (for :func:`fill_accounts`). ``config``: more app settings.
    """
    app = _base_app(folder, sink_host, sink_port, config or {})
    app.config.update(database, SMTP_ACCOUNTS_ENCRYPTION_KEYS=_key, SMTP_ACCOUNTS_REGISTER_CLI=False)
    db.init_app(app)
    smtp_accounts.init_app(app, db=db)
    with app.app_context():
        db.create_all()
        smtp_accounts.update_settings(enabled=True, **settings)
        if account is None:
            account = {"security": "none", "auth": "none"}
        if account:
            smtp_accounts.add_account(
                check=False, sender_email=SENDER[1], host=sink_host, port=sink_port, **account
            )
    return app


def dispose(app: Flask) -> None:
    """Give back the app's database connections (before its schema is dropped)."""
    with app.app_context():
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()


def set_logs(app: Flask, level: int | None) -> None:
    """Logs off (``None``) or on at ``level``."""
    with app.app_context():
        if level is None:
            smtp_accounts.update_settings(save_logs=False)
        else:
            smtp_accounts.update_settings(save_logs=True, log_level=level)


def fill_accounts(app: Flask, count: int, sink_host: str, sink_port: int, batch: int = 10_000) -> list[str]:
    """Insert ``count`` accounts with Core bulk inserts; return their addresses.

    Core inserts skip the ORM's per-row events, so ``email_key`` is written
    here and the settings revision is bumped once at the end.
    """
    addresses = [f"sender{i:06d}@list{i % 97}.example.com" for i in range(count)]
    now = datetime.now()
    with app.app_context():
        table = smtp_accounts.Account.__table__
        engine = db.engines[None]
        with engine.begin() as conn:
            for start in range(0, count, batch):
                conn.execute(
                    table.insert(),
                    [
                        {
                            "active": True,
                            "sender_name": "",
                            "sender_email": address,
                            "email_key": address.lower(),
                            "host": sink_host,
                            "port": sink_port,
                            "security": "none",
                            "auth": "none",
                            "login": "",
                            "password_encrypted": None,
                            "verify_tls": True,
                            "created_at": now,
                            "updated_at": now,
                        }
                        for address in addresses[start : start + batch]
                    ],
                )
        smtp_accounts.update_settings(enabled=True)
    return addresses


@contextlib.contextmanager
def genuine_flask_mail() -> t.Iterator[None]:
    """Flask-Mail exactly as shipped: its own ``Connection`` class, not the routed one."""
    installed = flask_mail.Connection
    flask_mail.Connection = GENUINE_CONNECTION  # type: ignore[misc]
    try:
        yield
    finally:
        flask_mail.Connection = installed  # type: ignore[misc]
