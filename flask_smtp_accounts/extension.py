"""The extension object: its set-up on an app, and the Python API it carries (``api/``).

:class:`SMTPAccounts` adds ``init_app`` and ``init_admin`` to the API; the
admin pages and the command line it registers are thin faces over that API.
"""

from __future__ import annotations

import typing as t
import warnings

from flask import Flask

from . import flask_mail_hook
from .admin import mount
from .api import ACCOUNT_FIELDS as ACCOUNT_FIELDS  # importable from here too
from .api import SMTPAccountsAPI
from .cli import smtp_accounts_cli
from .config import read_config
from .errors import AccountCheckFailed as AccountCheckFailed  # importable from here too, as sites already do
from .ids import IdConverter
from .models import Models, make_models
from .state import AppState

if t.TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy


class SMTPAccounts(SMTPAccountsAPI):
    """Sends every letter of a Flask-Mail site through the SMTP account of its From address.

    ::

        db = SQLAlchemy(app)
        Mail(app)
        smtp_accounts = SMTPAccounts(app, db=db)

    or, with an app factory, ``smtp_accounts.init_app(app, db=db)``.
    Flask-SQLAlchemy and Flask-Mail must be initialised on the app first:
    the extension finds Flask-Mail's state on the app, so it needs no
    ``mail`` object (``mail=`` is accepted with a DeprecationWarning for one release).
    """

    def __init__(self, app: Flask | None = None, *, db: SQLAlchemy | None = None, mail: t.Any = None) -> None:
        _warn_mail_argument(mail)
        self.db = db
        self._models: Models | None = None
        self._access_rule: t.Callable[[str], bool] | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask, *, db: SQLAlchemy | None = None, mail: t.Any = None) -> None:
        """Set the extension up on ``app``."""
        _warn_mail_argument(mail)
        if "smtp_accounts" in app.extensions:
            raise RuntimeError("SMTPAccounts is already initialised on this app; call init_app once per app.")
        db = db or self.db
        if db is None:
            raise RuntimeError(
                "SMTPAccounts needs the app's Flask-SQLAlchemy db: SMTPAccounts(app, db=db)"
                " or init_app(app, db=db)."
            )
        if "sqlalchemy" not in app.extensions:
            raise RuntimeError(
                "Flask-SQLAlchemy must be initialised on this app before SMTPAccounts: call db.init_app(app) first."
            )
        if "mail" not in app.extensions:
            raise RuntimeError(
                "Flask-Mail must be initialised on this app before SMTPAccounts: call Mail(app) or mail.init_app(app) first."
            )
        self.db = db
        config = read_config(app)
        models = self._bind_models(db, config.bind_key)
        app.extensions["smtp_accounts"] = AppState(self, db, models, config)
        app.url_map.converters["smtp_accounts_id"] = IdConverter
        flask_mail_hook.install()
        if config.register_cli:
            app.cli.add_command(smtp_accounts_cli)

    def _bind_models(self, db: SQLAlchemy, bind_key: str | None) -> Models:
        """The models on ``db`` (declared once per db); each app keeps those of its own db."""
        models = make_models(db, bind_key)
        if self._models is None:
            self._models = models
        return models

    # --- admin pages ----------------------------------------------------------

    def init_admin(
        self, admin: t.Any, *, category: t.Any = None, views: t.Mapping[str, type[t.Any]] | None = None
    ) -> dict[str, t.Any]:
        """Add the admin pages to the site's flask-admin ``Admin``, under one menu category.

        ``smtp_accounts.init_admin(admin)`` adds SMTP accounts, Sending
        logs, Settings and Routing preview under "Mail through SMTP".
        Nobody may open them until :meth:`access_rule` says so.
        ``views={"accounts": MyAccountsView}`` mounts a site's subclass of a
        page instead (its flask-admin hooks, such as ``on_model_change``, run).
        """
        return mount(self, admin, category=category, views=views)


def _warn_mail_argument(mail: t.Any) -> None:
    """``mail=`` did nothing: Flask-Mail is found on the app. Sites that pass it keep starting, warned."""
    if mail is not None:
        warnings.warn(
            "SMTPAccounts(mail=...) is not needed and is ignored: the extension finds Flask-Mail on the app."
            " Remove the argument: the next release refuses it.",
            DeprecationWarning,
            stacklevel=3,
        )
