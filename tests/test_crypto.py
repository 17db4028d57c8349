"""Passwords at rest: Fernet keys, MultiFernet rotation, and the bytes of the database file."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from apps import Site, make_site
from cryptography.fernet import Fernet, InvalidToken
from flask_mail import Message

from flask_smtp_accounts import DeliveryError, SMTPAccounts
from flask_smtp_accounts.testing import LOGIN, PASSWORD, SMTPServer

OTHER_PASSWORD = "другой-Pass#2"


def letter(subject: str = "Hi", sender: str = "hello@example.com") -> Message:
    return Message(subject, sender=sender, recipients=["bob@example.org"], body="Hello.")


def new_key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture
def open_site(tmp_path: Path, auth_server: SMTPServer) -> Iterator[Callable[..., Site]]:
    """``open_site(**config)``: a site on the one shared instance folder (one SQLite file).

    Several sites opened on it stand for the same site restarted with
    different keys. Each is used inside ``with site.app.app_context()``.
    """
    opened: list[Site] = []

    def open_(**config: Any) -> Site:
        site = make_site(tmp_path / "instance", MAIL_PORT=auth_server.port, **config)
        opened.append(site)
        return site

    yield open_
    for site in opened:
        with site.app.app_context():
            site.db.session.remove()
            site.db.engine.dispose()


def add_auth_account(ext: SMTPAccounts, server: SMTPServer, **fields: Any) -> Any:
    values: dict[str, Any] = {
        "sender_email": "hello@example.com",
        "host": server.host,
        "port": server.port,
        "security": "none",
        "auth": "login",
        "login": LOGIN,
    }
    values.update(fields)
    return ext.add_account(password=PASSWORD, check=False, **values)


def password_forms(password: str) -> list[bytes]:
    """The password as bytes in the encodings and base64 alignments it could be stored in."""
    raw = password.encode("utf-8")
    forms = [raw, password.encode("utf-16-le"), password.encode("unicode_escape")]
    for pad in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(b"\0" * pad + raw)
            # The part of the encoding that depends on the password's bytes only.
            forms.append(encoded[4 if pad else 0 : -4])
    return forms


def files_holding(folder: Path, password: str) -> list[str]:
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        found += [f"{path.name}: {form!r}" for form in password_forms(password) if form in data]
    return found


# --- keys from config or environment ---------------------------------------------------


@pytest.mark.parametrize("form", ["list", "comma-string", "environment"])
def test_keys_newest_first_in_every_form(open_site, auth_server, monkeypatch, form):
    old, new = new_key(), new_key()
    site = open_site(SMTP_ACCOUNTS_ENCRYPTION_KEYS=[old])
    with site.app.app_context():
        add_auth_account(site.ext, auth_server)

    if form == "list":
        config = {"SMTP_ACCOUNTS_ENCRYPTION_KEYS": [new, old]}
    elif form == "comma-string":
        config = {"SMTP_ACCOUNTS_ENCRYPTION_KEYS": f" {new} , {old} "}
    else:
        monkeypatch.setenv("SMTP_ACCOUNTS_ENCRYPTION_KEYS", f"{new},{old}")
        config = {}
    restarted = open_site(**config)
    with restarted.app.app_context():
        restarted.mail.send(letter("old key still decrypts"))
        account = add_auth_account(restarted.ext, auth_server, sender_email="new@example.com")
        restarted.mail.send(letter("new key encrypts", sender="new@example.com"))
        token = account.password_encrypted

    assert [r.message["Subject"] for r in auth_server.wait_for(2)] == [
        "old key still decrypts",
        "new key encrypts",
    ]
    assert all(r.login == LOGIN for r in auth_server.received)
    assert Fernet(new).decrypt(token.encode()).decode() == PASSWORD
    with pytest.raises(InvalidToken):
        Fernet(old).decrypt(token.encode())


def test_config_key_wins_over_the_environment(open_site, auth_server, monkeypatch):
    key = new_key()
    monkeypatch.setenv("SMTP_ACCOUNTS_ENCRYPTION_KEYS", new_key())
    site = open_site(SMTP_ACCOUNTS_ENCRYPTION_KEYS=key)
    with site.app.app_context():
        token = add_auth_account(site.ext, auth_server).password_encrypted
    assert Fernet(key).decrypt(token.encode()).decode() == PASSWORD


def test_a_password_written_under_a_removed_key_is_a_clear_error(open_site, auth_server):
    site = open_site(SMTP_ACCOUNTS_ENCRYPTION_KEYS=new_key())
    with site.app.app_context():
        add_auth_account(site.ext, auth_server)

    restarted = open_site(SMTP_ACCOUNTS_ENCRYPTION_KEYS=new_key())
    with restarted.app.app_context():
        with pytest.raises(DeliveryError, match="SMTP_ACCOUNTS_ENCRYPTION_KEYS") as raised:
            restarted.mail.send(letter())
        # A failure of the login stage like any other: recorded for a resend once the key is back.
        assert raised.value.stage == "login"
        assert restarted.ext.get_message(raised.value.record_id).status == "failed"
    assert auth_server.received == [] and auth_server.auth_attempts == []


# --- rotation ---------------------------------------------------------------------------


def test_rotation_re_encrypts_everything_so_the_old_key_can_go(open_site, auth_server):
    old, new = new_key(), new_key()
    site = open_site(SMTP_ACCOUNTS_ENCRYPTION_KEYS=[old])
    with site.app.app_context():
        for n in range(3):
            add_auth_account(site.ext, auth_server, sender_email=f"a{n}@example.com")
        site.ext.add_account(
            check=False,
            sender_email="nopw@example.com",
            host="smtp.example.net",
            security="none",
            auth="none",
        )

    both = open_site(SMTP_ACCOUNTS_ENCRYPTION_KEYS=[new, old])
    with both.app.app_context():
        assert both.ext.rotate_encryption_key() == 3
        tokens = both.db.session.scalars(
            sa.select(both.ext.Account.password_encrypted).where(
                both.ext.Account.password_encrypted.isnot(None)
            )
        ).all()
    assert [Fernet(new).decrypt(t.encode()).decode() for t in tokens] == [PASSWORD] * 3

    only_new = open_site(SMTP_ACCOUNTS_ENCRYPTION_KEYS=[new])
    with only_new.app.app_context(), only_new.mail.connect() as conn:
        for n in range(3):
            conn.send(letter(f"after rotation {n}", sender=f"a{n}@example.com"))

    got = auth_server.wait_for(3)
    assert [(r.mail_from, r.login) for r in got] == [(f"a{n}@example.com", LOGIN) for n in range(3)]


# --- the bytes at rest -------------------------------------------------------------------------


@pytest.mark.sqlite_only
@pytest.mark.parametrize("journal_mode", ["delete", "wal"])
def test_the_database_files_never_hold_the_password(open_site, auth_server, tmp_path, journal_mode):
    site = open_site(SMTP_ACCOUNTS_ENCRYPTION_KEYS=[new_key()])
    with site.app.app_context():
        with site.db.engine.connect() as conn:
            assert conn.exec_driver_sql(f"PRAGMA journal_mode={journal_mode}").scalar() == journal_mode
        account = add_auth_account(site.ext, auth_server)
        add_auth_account(site.ext, auth_server, sender_email="second@example.com")
        site.ext.update_account(account.id, password=OTHER_PASSWORD, check=False)
        site.ext.update_account(account.id, password=PASSWORD, check=False)
        site.ext.check_account(site.ext.get_account(account.id))
        site.mail.send(letter())
        site.ext.rotate_encryption_key()
        auth_server.wait_for(1)
        site.db.session.remove()
        # Checked while the connections are open: the -wal and -journal files still exist.
        instance = tmp_path / "instance"
        names = {p.name for p in instance.iterdir()}
        assert "site.db" in names
        if journal_mode == "wal":
            assert "site.db-wal" in names
        assert files_holding(instance, PASSWORD) == []
        assert files_holding(instance, OTHER_PASSWORD) == []
    assert files_holding(tmp_path / "instance", PASSWORD) == []


@pytest.mark.sqlite_only
def test_the_file_check_would_see_a_stored_password(open_site, tmp_path):
    """The check above can fail: a password stored in the clear is found, also in base64."""
    site = open_site(SMTP_ACCOUNTS_ENCRYPTION_KEYS=[new_key()])
    with site.app.app_context():
        site.db.session.execute(sa.text("CREATE TABLE leak (a TEXT, b TEXT)"))
        site.db.session.execute(
            sa.text("INSERT INTO leak VALUES (:a, :b)"),
            {"a": PASSWORD, "b": base64.b64encode(f"\0{LOGIN}\0{OTHER_PASSWORD}".encode()).decode()},
        )
        site.db.session.commit()
    assert files_holding(tmp_path / "instance", PASSWORD)
    assert files_holding(tmp_path / "instance", OTHER_PASSWORD)
