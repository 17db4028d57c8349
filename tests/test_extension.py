"""Setting the extension up: one line, the app factory, misuse errors, config, and apps without it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from apps import database_url
from cryptography.fernet import Fernet
from flask import Flask
from flask_mail import Mail, Message, email_dispatched
from flask_sqlalchemy import SQLAlchemy

from flask_smtp_accounts import SettingsInfo, SMTPAccounts
from flask_smtp_accounts.config import DEFAULTS
from flask_smtp_accounts.testing import SMTPServer


def letter(sender: str = "hello@example.com", subject: str = "Hi") -> Message:
    return Message(subject, sender=sender, recipients=["bob@example.org"], body="Hello.")


def flask_app(instance: Path, **config: Any) -> Flask:
    instance.mkdir(parents=True, exist_ok=True)
    app = Flask("factory_site", instance_path=str(instance))
    app.config.update(SQLALCHEMY_DATABASE_URI=database_url(instance), MAIL_SERVER="127.0.0.1", MAIL_PORT=1)
    app.config.update(config)
    return app


@pytest.fixture
def cleanup() -> Iterator[contextlib.ExitStack]:
    """Disposes engines and pops contexts the test registered."""
    with contextlib.ExitStack() as stack:
        yield stack


def dispose(stack: contextlib.ExitStack, app: Flask, db: SQLAlchemy) -> None:
    def close() -> None:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()

    stack.callback(close)


def add_plain_account(ext: SMTPAccounts, server: SMTPServer, email: str = "hello@example.com") -> Any:
    return ext.add_account(
        check=False, sender_email=email, host=server.host, port=server.port, security="none", auth="none"
    )


# --- the one line, and the app factory ---------------------------------------------


def test_one_line_registers_the_extension(tmp_path, cleanup):
    app = flask_app(tmp_path, SMTP_ACCOUNTS_ENCRYPTION_KEYS=Fernet.generate_key().decode())
    db = SQLAlchemy(app)
    Mail(app)

    ext = SMTPAccounts(app, db=db)
    dispose(cleanup, app, db)

    state = app.extensions["smtp_accounts"]
    assert state.ext is ext and state.db is db
    assert "smtp-accounts" in app.cli.commands
    for key, default in DEFAULTS.items():
        if key != "SMTP_ACCOUNTS_ENCRYPTION_KEYS":
            assert app.config[key] == default, key


def test_app_factory_with_init_app_routes_each_apps_letters_through_its_own_database(
    tmp_path, cleanup, make_smtp_server
):
    db = SQLAlchemy()
    mail = Mail()
    smtp_accounts = SMTPAccounts(db=db)
    assert smtp_accounts.Account.__tablename__ == "smtp_accounts_account"  # usable before any app exists
    key = Fernet.generate_key().decode()

    def create_app(name: str, own_server: SMTPServer) -> Flask:
        app = flask_app(tmp_path / name, SMTP_ACCOUNTS_ENCRYPTION_KEYS=key, MAIL_PORT=own_server.port)
        db.init_app(app)
        mail.init_app(app)
        smtp_accounts.init_app(app)
        dispose(cleanup, app, db)
        with app.app_context():
            db.create_all()
            smtp_accounts.update_settings(enabled=True)
        return app

    own_one, own_two, account_one, account_two = (make_smtp_server() for _ in range(4))
    one, two = create_app("one", own_one), create_app("two", own_two)
    with one.app_context():
        add_plain_account(smtp_accounts, account_one)
    with two.app_context():
        add_plain_account(smtp_accounts, account_two, "other@example.com")

    for app in (one, two):
        with app.app_context():
            mail.send(letter("hello@example.com", f"hello from {app.instance_path[-3:]}"))
            mail.send(letter("other@example.com", f"other from {app.instance_path[-3:]}"))

    assert [r.message["Subject"] for r in account_one.wait_for(1)] == ["hello from one"]
    assert [r.message["Subject"] for r in own_one.wait_for(1)] == ["other from one"]
    assert [r.message["Subject"] for r in account_two.wait_for(1)] == ["other from two"]
    assert [r.message["Subject"] for r in own_two.wait_for(1)] == ["hello from two"]


def test_init_app_takes_db_as_a_keyword(tmp_path, cleanup, make_smtp_server):
    app = flask_app(tmp_path, SMTP_ACCOUNTS_ENCRYPTION_KEYS=Fernet.generate_key().decode())
    db, mail = SQLAlchemy(app), Mail()
    mail.init_app(app)
    ext = SMTPAccounts()
    ext.init_app(app, db=db)
    dispose(cleanup, app, db)
    server = make_smtp_server()

    with app.app_context():
        db.create_all()
        ext.update_settings(enabled=True)
        add_plain_account(ext, server)
        mail.send(letter())

    assert server.wait_for(1)[0].mail_from == "hello@example.com"


def test_one_extension_object_for_two_apps_with_their_own_db_objects(tmp_path, cleanup, make_smtp_server):
    ext = SMTPAccounts()
    key = Fernet.generate_key().decode()
    servers = [make_smtp_server(), make_smtp_server()]
    apps = []
    for n, server in enumerate(servers):
        app = flask_app(tmp_path / f"app{n}", SMTP_ACCOUNTS_ENCRYPTION_KEYS=key)
        db, mail = SQLAlchemy(app), Mail(app)
        ext.init_app(app, db=db)
        dispose(cleanup, app, db)
        with app.app_context():
            db.create_all()
            ext.update_settings(enabled=True)
            add_plain_account(ext, server)
        apps.append((app, mail))

    for n, (app, mail) in enumerate(apps):
        with app.app_context():
            mail.send(letter(subject=f"app {n}"))

    assert [r.message["Subject"] for r in servers[0].wait_for(1)] == ["app 0"]
    assert [r.message["Subject"] for r in servers[1].wait_for(1)] == ["app 1"]


# --- an app without the extension --------------------------------------------------------


def test_a_second_app_without_the_extension_is_plain_flask_mail(
    site, add_account, make_smtp_server, smtp_server
):
    routed_server, plain_server = make_smtp_server(), make_smtp_server()
    add_account(routed_server, sender_name="Account Name")
    plain_app = Flask("plain")
    plain_app.config.update(MAIL_SERVER=plain_server.host, MAIL_PORT=plain_server.port)
    plain_mail = Mail(plain_app)
    dispatched: list[Any] = []

    def record(app: Any, message: Message) -> None:
        dispatched.append((app, message.subject))

    with email_dispatched.connected_to(record), site.mail.connect() as conn:
        conn.send(letter(subject="routed 1"))
        with plain_app.app_context():
            plain_mail.send(letter(subject="plain"))
            with plain_mail.connect() as plain_conn:
                plain_conn.send(letter(subject="plain in a block"))
        conn.send(letter(subject="routed 2"))

    assert [r.message["Subject"] for r in routed_server.wait_for(2)] == ["routed 1", "routed 2"]
    plain = plain_server.wait_for(2)
    assert [(r.message["Subject"], r.mail_from, r.message["From"]) for r in plain] == [
        ("plain", "hello@example.com", "hello@example.com"),
        ("plain in a block", "hello@example.com", "hello@example.com"),
    ]
    assert smtp_server.received == []
    assert dispatched == [
        (site.app, "routed 1"),
        (plain_app, "plain"),
        (plain_app, "plain in a block"),
        (site.app, "routed 2"),
    ]


def test_an_app_without_the_extension_keeps_flask_mails_suppression(site, add_account, make_smtp_server):
    server = make_smtp_server()
    add_account(server)
    plain_app = Flask("plain")
    plain_app.config.update(TESTING=True, MAIL_SERVER=server.host, MAIL_PORT=server.port)
    plain_mail = Mail(plain_app)

    with plain_app.app_context(), plain_mail.record_messages() as outbox:
        plain_mail.send(letter())

    assert len(outbox) == 1
    assert server.received == []


# --- misuse: a RuntimeError that says how to fix it ----------------------------------------


def test_missing_flask_mail(tmp_path):
    app = flask_app(tmp_path, SMTP_ACCOUNTS_ENCRYPTION_KEYS=Fernet.generate_key().decode())
    db = SQLAlchemy(app)

    with pytest.raises(
        RuntimeError, match=r"Flask-Mail must be initialised.*Mail\(app\) or mail.init_app\(app\)"
    ):
        SMTPAccounts(app, db=db)
    assert "smtp_accounts" not in app.extensions
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_missing_db(tmp_path):
    app = flask_app(tmp_path, SMTP_ACCOUNTS_ENCRYPTION_KEYS=Fernet.generate_key().decode())
    Mail(app)

    with pytest.raises(RuntimeError, match=r"needs the app's Flask-SQLAlchemy db.*db=db"):
        SMTPAccounts(app)
    assert "smtp_accounts" not in app.extensions


def test_db_not_initialised_on_this_app(tmp_path):
    app = flask_app(tmp_path, SMTP_ACCOUNTS_ENCRYPTION_KEYS=Fernet.generate_key().decode())
    Mail(app)

    with pytest.raises(RuntimeError, match=r"db.init_app\(app\)"):
        SMTPAccounts(app, db=SQLAlchemy())


def test_missing_encryption_key(tmp_path, monkeypatch):
    monkeypatch.delenv("SMTP_ACCOUNTS_ENCRYPTION_KEYS", raising=False)
    app = flask_app(tmp_path)
    db = SQLAlchemy(app)
    Mail(app)

    with pytest.raises(RuntimeError) as excinfo:
        SMTPAccounts(app, db=db)

    message = str(excinfo.value)
    assert "SMTP_ACCOUNTS_ENCRYPTION_KEYS" in message
    assert "Fernet.generate_key()" in message
    assert "smtp_accounts" not in app.extensions
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.mark.parametrize("key", ["not-a-key", "", " , "])
def test_a_value_that_is_not_a_fernet_key(tmp_path, monkeypatch, key):
    monkeypatch.delenv("SMTP_ACCOUNTS_ENCRYPTION_KEYS", raising=False)
    app = flask_app(tmp_path, SMTP_ACCOUNTS_ENCRYPTION_KEYS=key)
    db = SQLAlchemy(app)
    Mail(app)

    with pytest.raises(RuntimeError, match="SMTP_ACCOUNTS_ENCRYPTION_KEYS"):
        SMTPAccounts(app, db=db)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_init_app_twice(site):
    with pytest.raises(RuntimeError, match="already initialised"):
        site.ext.init_app(site.app)


def test_missing_tables_say_how_to_create_them(tmp_path, cleanup):
    app = flask_app(tmp_path, SMTP_ACCOUNTS_ENCRYPTION_KEYS=Fernet.generate_key().decode())
    db, mail = SQLAlchemy(app), Mail(app)
    ext = SMTPAccounts(app, db=db)
    dispose(cleanup, app, db)

    with app.app_context(), pytest.raises(RuntimeError, match=r"db.create_all\(\)"):
        mail.send(letter())
    with app.app_context(), pytest.raises(RuntimeError, match=r"db.create_all\(\)"):
        ext.settings  # noqa: B018


def test_api_on_an_app_without_the_extension_says_so(site):
    plain_app = Flask("plain")
    with (
        plain_app.app_context(),
        pytest.raises(RuntimeError, match=r"not initialised on the current app.*init_app"),
    ):
        site.ext.settings  # noqa: B018


# --- the Python API: models and settings ----------------------------------------------------


def test_account_model_and_settings_are_reachable(site, db):
    ext = site.ext

    assert ext.Account.__table__.name == "smtp_accounts_account"
    assert ext.Settings.__table__.name == "smtp_accounts_settings"
    assert set(ext.Account.__table__.c.keys()) >= {
        "id",
        "active",
        "sender_name",
        "sender_email",
        "host",
        "port",
        "security",
        "auth",
        "login",
        "password_encrypted",
        "verify_tls",
        "created_at",
        "updated_at",
    }
    assert "password" not in ext.Account.__table__.c
    settings = ext.settings
    assert isinstance(settings, SettingsInfo) and settings.enabled is True
    changed = ext.update_settings(timeout_s=3, log_level=3)
    assert (changed.timeout_s, ext.settings.timeout_s, ext.settings.log_level) == (3, 3, 3)
    with pytest.raises(Exception, match="FrozenInstanceError|cannot assign"):
        settings.enabled = False  # type: ignore[misc]


def test_settings_changed_directly_in_the_table_are_seen(
    site, db, add_account, make_smtp_server, smtp_server
):
    server = make_smtp_server()
    add_account(server)
    row = db.session.get(site.ext.Settings, 1)

    row.enabled = False
    db.session.commit()
    site.mail.send(letter(subject="off"))
    row.enabled = True
    db.session.commit()
    site.mail.send(letter(subject="on"))

    assert [r.message["Subject"] for r in smtp_server.wait_for(1)] == ["off"]
    assert [r.message["Subject"] for r in server.wait_for(1)] == ["on"]


# --- config: booleans parsed strictly -------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "registered"),
    [
        ("False", False),
        ("false", False),
        ("0", False),
        (False, False),
        ("True", True),
        ("1", True),
        (True, True),
    ],
)
def test_register_cli_is_parsed_strictly(tmp_path, cleanup, value, registered):
    app = flask_app(
        tmp_path,
        SMTP_ACCOUNTS_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        SMTP_ACCOUNTS_REGISTER_CLI=value,
    )
    db = SQLAlchemy(app)
    Mail(app)
    SMTPAccounts(app, db=db)
    dispose(cleanup, app, db)

    assert ("smtp-accounts" in app.cli.commands) is registered


def test_a_boolean_that_is_neither_is_refused(tmp_path, cleanup):
    app = flask_app(
        tmp_path,
        SMTP_ACCOUNTS_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        SMTP_ACCOUNTS_REGISTER_CLI="sometimes",
    )
    db = SQLAlchemy(app)
    Mail(app)
    dispose(cleanup, app, db)

    with pytest.raises(RuntimeError, match="SMTP_ACCOUNTS_REGISTER_CLI"):
        SMTPAccounts(app, db=db)
