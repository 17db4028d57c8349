"""Building a real site for tests: Flask, Flask-SQLAlchemy on a SQLite file, Flask-Mail, the extension."""

from __future__ import annotations

import pathlib
import typing as t
from dataclasses import dataclass

from flask import Flask
from flask_mail import Mail
from flask_sqlalchemy import SQLAlchemy

from flask_smtp_accounts import SMTPAccounts


@dataclass
class Site:
    app: Flask
    db: SQLAlchemy
    mail: Mail
    ext: SMTPAccounts


def make_site(instance: pathlib.Path, *, enabled: bool = True, **config: t.Any) -> Site:
    """A site whose database is ``instance/site.db``, with the extension set up.

    ``config`` overrides the app config (``SMTP_ACCOUNTS_ENCRYPTION_KEYS``,
    ``MAIL_SERVER``, ``MAIL_PORT``...). With ``enabled`` the routing setting
    is switched on, as an administrator would.
    """
    instance.mkdir(parents=True, exist_ok=True)
    app = Flask("site", instance_path=str(instance))
    app.config.update(
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{instance / 'site.db'}",
        SECRET_KEY="test-secret",
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=1,
    )
    app.config.update(config)
    db = SQLAlchemy(app)
    mail = Mail(app)
    ext = SMTPAccounts(app, db=db, mail=mail)
    with app.app_context():
        db.create_all()
        if enabled:
            ext.update_settings(enabled=True)
    return Site(app, db, mail, ext)
