"""An example shop that sends its mail with plain Flask-Mail, routed by flask-smtp-accounts.

``python -m example_app`` (or ``scripts/demo``) starts it with local SMTP
servers; see ``demo.py``. ``create_app()`` alone builds the site without
them, e.g. for ``flask --app example_app smtp-accounts list`` while the demo
runs in another terminal.
"""

from __future__ import annotations

import os
import typing as t
from pathlib import Path

from flask import Flask, request
from flask_admin import Admin
from flask_admin.menu import MenuLink
from flask_babel import Babel
from flask_login import LoginManager, current_user
from flask_mail import Mail

from flask_smtp_accounts import SMTPAccounts

from .demo import CERTS_DIR, NEWSLETTER_NAME, SHOP_EMAIL, load_secrets
from .models import Subscriber, User, db
from .views import site

DEFAULT_INSTANCE = Path(__file__).resolve().parent / "instance"
LANGUAGES = ("en", "ru")


def create_app(
    config: t.Mapping[str, t.Any] | None = None, *, instance_path: str | os.PathLike[str] | None = None
) -> Flask:
    """Build the shop: its database, Flask-Mail, the extension, logins and the admin.

    The instance folder (``EXAMPLE_APP_INSTANCE`` or ``example_app/instance``)
    holds the SQLite database and the demo's generated secrets.
    """
    instance = Path(instance_path or os.environ.get("EXAMPLE_APP_INSTANCE") or DEFAULT_INSTANCE).resolve()
    secrets = load_secrets(instance)
    app = Flask(__name__, instance_path=str(instance))
    app.config.update(
        SECRET_KEY=secrets["secret_key"],
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{instance / 'example.sqlite'}",
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=25,
        MAIL_DEFAULT_SENDER=SHOP_EMAIL,
        SHOP_OWNER="owner@shop.example",
        NEWSLETTER_SENDER=(NEWSLETTER_NAME, SHOP_EMAIL),
        NO_REPLY_SENDER=("Example Shop", "no-reply@shop.example"),
        # Demo only: a real site keeps its key out of the instance folder (environment, secret store).
        SMTP_ACCOUNTS_ENCRYPTION_KEYS=secrets["encryption_key"],
        SMTP_ACCOUNTS_CA_FILE=str(instance / CERTS_DIR / "ca.pem"),
    )
    app.config.update(config or {})

    db.init_app(app)
    Mail(app)
    smtp_accounts = SMTPAccounts(app, db=db)
    Babel(app, locale_selector=lambda: request.accept_languages.best_match(LANGUAGES) or "en")

    login_manager = LoginManager(app)
    login_manager.login_view = "site.login"

    @login_manager.user_loader
    def load_user(user_id: str) -> User | None:
        return db.session.get(User, int(user_id))

    admin = Admin(app, name="Example Shop admin")
    smtp_accounts.init_admin(admin)
    admin.add_link(MenuLink(name="Back to the shop", url="/"))
    admin.add_link(MenuLink(name="Demo inbox", url="/inbox"))

    @smtp_accounts.access_rule
    def can(permission: str) -> bool:
        return bool(current_user.is_authenticated and current_user.is_admin)

    app.register_blueprint(site)
    with app.app_context():
        db.create_all()
        _seed_site(secrets)
    return app


def _seed_site(secrets: t.Mapping[str, str]) -> None:
    """The shop's users and a few subscribers, on the first start."""
    if db.session.scalar(db.select(User).limit(1)) is not None:
        return
    for email, name, is_admin, password in (
        ("admin@shop.example", "Ada Admin", True, secrets["admin_password"]),
        ("editor@shop.example", "Eddie Editor", False, secrets["editor_password"]),
    ):
        user = User(email=email, name=name, is_admin=is_admin)
        user.set_password(password)
        db.session.add(user)
    for email, name in (
        ("ann@customers.example", "Ann"),
        ("bob@customers.example", "Bob"),
        ("cy@customers.example", ""),
    ):
        db.session.add(Subscriber(email=email, name=name))
    db.session.commit()
