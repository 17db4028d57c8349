"""Storage of accounts and settings on the site's own db, and refusal of bad input."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from flask_mail import Message

from flask_smtp_accounts import AccountCheckFailed, InvalidAccountError, InvalidSettingError, SettingsInfo
from flask_smtp_accounts.testing import LOGIN, PASSWORD, HangingServer

GOOD: dict[str, Any] = {
    "sender_name": "Test mail 34web",
    "sender_email": "test@34web.example",
    "host": "smtp.example.net",
    "port": 587,
    "security": "starttls",
    "auth": "login",
    "login": "test@34web.example",
}


def count(db, model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def stored_revision(db, ext) -> int:
    return db.session.scalar(sa.select(ext.Settings.revision))


# --- storage ------------------------------------------------------------------------


def test_tables_are_on_the_sites_own_metadata(db, ext):
    assert ext.Account.__table__ is db.metadata.tables["smtp_accounts_account"]
    assert ext.Settings.__table__ is db.metadata.tables["smtp_accounts_settings"]
    assert {"smtp_accounts_account", "smtp_accounts_settings"} <= set(sa.inspect(db.engine).get_table_names())


def test_an_account_is_saved_with_its_defaults(ext, db, app):
    # Long enough that a random Fernet token never holds it by chance.
    password = "a-password-of-thirty-two-letters"
    account = ext.add_account(password=password, check=False, **GOOD)
    db.session.expire_all()

    row = db.session.get(ext.Account, account.id)
    assert (row.sender_name, row.sender_email, row.host, row.port, row.security, row.auth, row.login) == (
        "Test mail 34web",
        "test@34web.example",
        "smtp.example.net",
        587,
        "starttls",
        "login",
        "test@34web.example",
    )
    assert row.active is True
    assert row.verify_tls is True
    assert isinstance(row.created_at, datetime) and isinstance(row.updated_at, datetime)
    assert row.password_encrypted and password not in row.password_encrypted
    assert app.extensions["smtp_accounts"].vault.decrypt(row.password_encrypted) == password


def test_fields_are_trimmed_and_the_port_may_be_a_string(ext, db):
    account = ext.add_account(
        password="pw",
        check=False,
        **{
            **GOOD,
            "sender_email": "  test@34web.example ",
            "host": " smtp.example.net ",
            "port": "465",
            "sender_name": "  Name  ",
        },
    )
    db.session.expire_all()
    row = db.session.get(ext.Account, account.id)
    assert (row.sender_email, row.host, row.port, row.sender_name) == (
        "test@34web.example",
        "smtp.example.net",
        465,
        "Name",
    )


def test_password_is_write_only(ext, db):
    account = ext.add_account(password="pw", check=False, **GOOD)

    assert not hasattr(account, "password")  # the API's AccountInfo carries only the ciphertext
    with pytest.raises(AttributeError, match="write-only"):
        db.session.get(ext.Account, account.id).password  # noqa: B018


def test_several_accounts_may_share_one_email(ext, db):
    ext.add_account(password="a", check=False, **GOOD)
    ext.add_account(
        password="b", check=False, **{**GOOD, "host": "smtp-pulse.example", "port": 465, "security": "ssl"}
    )

    assert count(db, ext.Account) == 2


def test_update_keeps_the_password_when_none_is_given(ext, db, encryption_key):
    account = ext.add_account(password="first", check=False, **GOOD)
    before = account.password_encrypted

    ext.update_account(account.id, check=False, sender_name="Shop")
    ext.update_account(account.id, password="", check=False, backup_ids=[])
    db.session.expire_all()
    row = db.session.get(ext.Account, account.id)
    assert (row.sender_name, row.password_encrypted) == ("Shop", before)

    ext.update_account(account.id, password="second", check=False)
    db.session.expire_all()
    row = db.session.get(ext.Account, account.id)
    assert Fernet(encryption_key).decrypt(row.password_encrypted.encode()) == b"second"
    assert row.updated_at >= row.created_at


def test_delete_account(ext, db):
    account = ext.add_account(password="pw", check=False, **GOOD)

    ext.delete_account(account.id)

    assert count(db, ext.Account) == 0
    with pytest.raises(LookupError, match=str(account.id)):
        ext.get_account(account.id)


def test_unknown_field_is_refused(ext, db):
    with pytest.raises(TypeError, match="colour"):
        ext.add_account(password="pw", check=False, colour="red", **GOOD)
    assert count(db, ext.Account) == 0


def test_a_failed_check_saves_nothing(ext, db, auth_server):
    fields = {**GOOD, "host": auth_server.host, "port": auth_server.port, "security": "none", "login": LOGIN}

    with pytest.raises(AccountCheckFailed) as excinfo:
        ext.add_account(password="wrong password", **fields)

    assert excinfo.value.result.stage == "login"
    assert count(db, ext.Account) == 0


def test_a_passing_check_saves(ext, db, auth_server):
    fields = {**GOOD, "host": auth_server.host, "port": auth_server.port, "security": "none", "login": LOGIN}

    account = ext.add_account(password=PASSWORD, **fields)

    assert count(db, ext.Account) == 1
    assert auth_server.auth_attempts[-1].success
    assert account.id


def test_a_failed_check_on_update_changes_nothing(ext, db, auth_server):
    fields = {**GOOD, "host": auth_server.host, "port": auth_server.port, "security": "none", "login": LOGIN}
    account = ext.add_account(password=PASSWORD, **fields)

    with pytest.raises(AccountCheckFailed):
        ext.update_account(account.id, password="wrong password", sender_name="Changed")

    db.session.expire_all()
    row = db.session.get(ext.Account, account.id)
    assert row.sender_name == "Test mail 34web"
    assert ext.check_account(row).ok  # the stored password is still the right one


# --- settings -----------------------------------------------------------------------------


def test_settings_have_the_original_modules_defaults(tmp_path, encryption_key):
    from apps import make_site

    site = make_site(tmp_path / "fresh", enabled=False, SMTP_ACCOUNTS_ENCRYPTION_KEYS=encryption_key)
    with site.app.app_context():
        settings = site.ext.settings
        site.db.session.remove()
        site.db.engine.dispose()
    assert (
        settings.enabled,
        settings.save_logs,
        settings.log_level,
        settings.log_rewrite_period,
        settings.max_log_size_mb,
        settings.timeout_s,
        settings.send_test_on_check,
        settings.test_recipient,
    ) == (False, True, 2, "day", 10, 10, False, "")


def test_update_settings_saves_and_returns_the_new_settings(ext, db):
    returned = ext.update_settings(
        log_level=4,
        log_rewrite_period="week",
        max_log_size_mb=0,
        timeout_s=30,
        send_test_on_check=True,
        test_recipient="admin@example.com",
        save_logs=False,
    )

    assert isinstance(returned, SettingsInfo)
    for settings in (returned, ext.settings):
        assert (
            settings.enabled,
            settings.log_level,
            settings.log_rewrite_period,
            settings.max_log_size_mb,
            settings.timeout_s,
            settings.send_test_on_check,
            settings.test_recipient,
            settings.save_logs,
        ) == (True, 4, "week", 0, 30, True, "admin@example.com", False)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("False", False),
        ("false", False),
        ("0", False),
        ("off", False),
        ("True", True),
        ("on", True),
        (0, False),
        (1, True),
    ],
)
def test_boolean_settings_are_parsed_strictly(ext, value, expected):
    assert ext.update_settings(enabled=value).enabled is expected
    assert ext.settings.enabled is expected


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("enabled", "maybe"),
        ("enabled", 2),
        ("log_level", 0),
        ("log_level", 5),
        ("log_level", "two"),
        ("log_rewrite_period", "hour"),
        ("max_log_size_mb", -1),
        ("timeout_s", 0),
        ("test_recipient", "not an address"),
        ("colour", "red"),
    ],
)
def test_bad_settings_are_refused_and_nothing_is_written(ext, db, field, value):
    before = ext.settings

    with pytest.raises(InvalidSettingError) as excinfo:
        ext.update_settings(save_logs=False, **{field: value})

    assert excinfo.value.field == field
    assert ext.settings == before
    assert ext.settings.save_logs is True


# --- bad input: a clear error naming the field, nothing written ---------------------------------


BAD_ACCOUNTS = [
    ("sender_email", {"sender_email": "not-an-email"}),
    ("sender_email", {"sender_email": "two@at@example.com"}),
    ("sender_email", {"sender_email": ""}),
    ("sender_email", {"sender_email": "hello@example.com\r\nBcc: victim@example.org"}),
    ("port", {"port": 0}),
    ("port", {"port": 65536}),
    ("port", {"port": "abc"}),
    ("port", {"port": -25}),
    ("port", {"port": 25.5}),
    ("port", {"port": True}),
    ("host", {"host": ""}),
    ("host", {"host": "   "}),
    ("host", {"host": "smtp example.net"}),
    ("host", {"host": "smtp.example.net\r\nMAIL FROM:<x@y>"}),
    ("host", {"host": "smtp.example.net\n"}),
    ("host", {"host": "smtp\texample.net"}),
    ("security", {"security": "tls"}),
    ("security", {"security": ""}),
    ("auth", {"auth": "plain"}),
    ("login", {"auth": "login", "login": ""}),
    ("login", {"auth": "login", "login": "user\r\nRCPT TO:<x@y>"}),
    ("sender_name", {"sender_name": "Name\r\nBcc: victim@example.org"}),
    ("sender_name", {"sender_name": "Name\nX: y"}),
    ("sender_name", {"sender_name": "Name\r\n"}),
    ("sender_email", {"sender_email": "hello@example.com\n"}),
    ("login", {"login": "user@example.com\r\n"}),
    ("sender_name", {"sender_name": "x" * 256}),
]


@pytest.mark.parametrize(
    ("field", "change"), BAD_ACCOUNTS, ids=[f"{f}-{i}" for i, (f, _) in enumerate(BAD_ACCOUNTS)]
)
def test_bad_account_is_refused_naming_the_field(ext, db, field, change):
    revision = stored_revision(db, ext)

    with pytest.raises(InvalidAccountError) as excinfo:
        ext.add_account(password="pw", check=False, **{**GOOD, **change})

    assert excinfo.value.field == field
    assert str(excinfo.value).startswith(f"{field}: ")
    assert count(db, ext.Account) == 0
    assert stored_revision(db, ext) == revision


def test_bad_account_is_refused_before_the_check_connects(ext, db):
    with HangingServer() as hanging:
        for field, change in BAD_ACCOUNTS:
            with pytest.raises(InvalidAccountError) as excinfo:
                ext.add_account(
                    password="pw",
                    check=True,
                    **{**GOOD, "host": hanging.host, "port": hanging.port, **change},
                )
            assert excinfo.value.field == field, change
        assert hanging.connections == 0
    assert count(db, ext.Account) == 0


def test_login_auth_without_password_is_refused(ext, db):
    with pytest.raises(InvalidAccountError) as excinfo:
        ext.add_account(check=False, **GOOD)
    assert excinfo.value.field == "password"
    assert count(db, ext.Account) == 0


def test_no_auth_needs_neither_login_nor_password(ext, db):
    ext.add_account(check=False, **{**GOOD, "auth": "none", "login": ""})
    assert count(db, ext.Account) == 1


@pytest.mark.parametrize(("field", "change"), BAD_ACCOUNTS[:8], ids=[f for f, _ in BAD_ACCOUNTS[:8]])
def test_bad_update_changes_nothing(ext, db, field, change):
    account = ext.add_account(password="pw", check=False, **GOOD)
    revision = stored_revision(db, ext)

    with pytest.raises(InvalidAccountError) as excinfo:
        ext.update_account(account.id, check=False, **change)

    assert excinfo.value.field == field
    db.session.expire_all()
    row = db.session.get(ext.Account, account.id)
    assert {name: getattr(row, name) for name in GOOD} == GOOD
    assert stored_revision(db, ext) == revision


@pytest.mark.parametrize(("field", "change"), BAD_ACCOUNTS[::3], ids=[f for f, _ in BAD_ACCOUNTS[::3]])
def test_a_plain_orm_write_is_validated_too(ext, db, field, change):
    db.session.add(ext.Account(password_encrypted="x", **{**GOOD, **change}))

    with pytest.raises(InvalidAccountError) as excinfo:
        db.session.commit()
    db.session.rollback()

    assert excinfo.value.field == field
    assert count(db, ext.Account) == 0


def test_a_bad_account_never_carries_a_letter(ext, db, mail, smtp_server):
    with pytest.raises(InvalidAccountError):
        ext.add_account(check=False, **{**GOOD, "sender_email": "hello@example.com", "host": "bad host"})

    mail.send(Message("Hi", sender="hello@example.com", recipients=["bob@example.org"], body="x"))

    assert smtp_server.wait_for(1)[0].mail_from == "hello@example.com"


def test_saving_an_account_leaves_the_sites_session_with_no_transaction_open(ext, db):
    """An open one would hold a snapshot older than the next change made elsewhere (MySQL's REPEATABLE READ)."""
    account = ext.add_account(password="pw", check=False, **GOOD)
    assert not db.session().in_transaction()

    ext.update_account(account.id, check=False, sender_name="Shop")
    assert not db.session().in_transaction()

    assert ext.get_account(account.id).sender_name == "Shop"
    assert not db.session().in_transaction()
