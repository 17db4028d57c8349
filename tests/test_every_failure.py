"""Whatever goes wrong inside a send or a check is an SMTP failure of its stage.

A challenge that is not base64, a host name IDNA refuses, a stored secret
no key decrypts: each fails its stage as a ``DeliveryError`` (a failed
``CheckResult`` for a check), the backup is tried and the message log
records the letter, as for a server that refuses.
"""

from __future__ import annotations

import typing as t

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from flask_mail import Message
from misbehaving import ScriptedServer

from flask_smtp_accounts import DeliveryError, InvalidAccountError

SENDER = "shop@example.com"


def letter() -> Message:
    return Message("Order 1", sender=SENDER, recipients=["ann@example.org"], body="Thanks.")


def plain(server: t.Any, **more: t.Any) -> dict[str, t.Any]:
    return {
        "sender_email": SENDER,
        "host": server.host,
        "port": server.port,
        "security": "none",
        "auth": "none",
        **more,
    }


def store(ext: t.Any, db: t.Any, account_id: int, **columns: t.Any) -> None:
    """Write columns as a bad migration or another tool would: past the validation."""
    table = ext.Account.__table__
    db.session.execute(sa.update(table).where(table.c.id == account_id).values(**columns))
    db.session.commit()


def sent_through_backup(
    mail: t.Any, ext: t.Any, backup_server: t.Any, primary_id: int, stage: str
) -> dict[str, t.Any]:
    """Send a letter; assert the backup carried it; the primary's failed try, from the message log."""
    sent = letter()
    mail.send(sent)
    [got] = backup_server.wait_for(1)
    assert got.message["Message-ID"] == sent.msgId
    [row] = ext.messages().items
    assert row.status == "sent" and row.chosen_account_id == primary_id
    failed = row.history[0]
    assert (failed["account_id"], failed["stage"]) == (primary_id, stage)
    return t.cast(dict[str, t.Any], failed)


@pytest.fixture
def backup_server(make_smtp_server: t.Any) -> t.Any:
    return make_smtp_server()


@pytest.fixture
def backup_id(ext: t.Any, backup_server: t.Any) -> int:
    return int(ext.add_account(check=False, **plain(backup_server)).id)


# --- a challenge that is not base64 ------------------------------------------------------


def test_an_auth_challenge_that_is_not_base64_fails_the_login_and_the_backup_delivers(
    mail, ext, backup_server, backup_id
):
    with ScriptedServer(auth_challenge="334 abc") as server:
        primary = ext.add_account(
            check=False, backup_ids=[backup_id], password="pw", **plain(server, auth="login", login="shop")
        )
        failed = sent_through_backup(mail, ext, backup_server, primary.id, "login")
    assert "AUTH challenge is not base64" in failed["error"]


def test_an_auth_challenge_that_is_not_base64_is_logged_and_checked_as_a_failure(mail, ext):
    with ScriptedServer(auth_challenge="334 abc") as server:
        account = ext.add_account(check=False, password="pw", **plain(server, auth="login", login="shop"))
        with pytest.raises(DeliveryError) as raised:
            mail.send(letter())
        result = ext.check_account(ext.get_account(account.id), send_test=False)

    assert (raised.value.stage, raised.value.account_id) == ("login", account.id)
    row = ext.get_message(raised.value.record_id)
    assert (row.status, row.error_stage) == ("failed", "login") and row.resendable
    assert (result.ok, result.stage) == (False, "login")
    assert "AUTH challenge is not base64" in result.message


# --- host names ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["smtp..example.com", "a" * 64 + ".example.com", ".example.com", "x." * 127 + "com"]
)
def test_a_host_that_is_no_host_name_is_refused_naming_the_field(ext, host):
    with pytest.raises(InvalidAccountError) as refused:
        ext.add_account(check=False, sender_email=SENDER, host=host, port=25, security="none", auth="none")
    assert refused.value.field == "host"
    assert "1 to 63 characters" in refused.value.message


@pytest.mark.parametrize(
    "host", ["smtp.example.com", "smtp.example.com.", "почта.example", "127.0.0.1", "::1", "localhost"]
)
def test_host_names_and_addresses_are_accepted(ext, host):
    assert (
        ext.add_account(
            check=False, sender_email=SENDER, host=host, port=25, security="none", auth="none"
        ).host
        == host
    )


def test_a_stored_host_idna_refuses_fails_the_connect_and_the_backup_delivers(
    mail, ext, db, backup_server, backup_id
):
    primary = ext.add_account(check=False, backup_ids=[backup_id], **plain(backup_server))
    store(ext, db, primary.id, host="smtp..example.com")
    failed = sent_through_backup(mail, ext, backup_server, primary.id, "connect")
    assert "smtp..example.com" in failed["error"]


# --- a secret no key decrypts --------------------------------------------------------------


def foreign_ciphertext() -> str:
    return Fernet(Fernet.generate_key()).encrypt(b"pw").decode()


def test_a_password_no_key_decrypts_fails_the_login_and_the_backup_delivers(
    mail, ext, db, auth_server, backup_server, backup_id
):
    from flask_smtp_accounts.testing import LOGIN, PASSWORD

    primary = ext.add_account(
        check=False,
        backup_ids=[backup_id],
        password=PASSWORD,
        **plain(auth_server, auth="login", login=LOGIN),
    )
    store(ext, db, primary.id, password_encrypted=foreign_ciphertext())
    failed = sent_through_backup(mail, ext, backup_server, primary.id, "login")
    assert "cannot be decrypted with any configured key" in failed["error"]
    assert auth_server.auth_attempts == []


def test_a_password_no_key_decrypts_is_a_failed_check_and_a_logged_letter(mail, ext, db, auth_server):
    from flask_smtp_accounts.testing import LOGIN, PASSWORD

    account = ext.add_account(check=False, password=PASSWORD, **plain(auth_server, auth="login", login=LOGIN))
    store(ext, db, account.id, password_encrypted=foreign_ciphertext())
    result = ext.check_account(ext.get_account(account.id), send_test=False)
    with pytest.raises(DeliveryError) as raised:
        mail.send(letter())

    assert (result.ok, result.stage) == (False, "login")
    assert "cannot be decrypted" in result.message
    assert raised.value.stage == "login"
    assert ext.get_message(raised.value.record_id).status == "failed"


def test_saving_an_account_whose_server_sends_a_bad_challenge_answers_with_the_form(admin_site):
    from test_admin import ADMIN, post_form, text_of

    client = admin_site.app.test_client()
    client.get("/test-login/admin")
    with ScriptedServer(auth_challenge="334 abc") as server:
        form = {
            "active": "y",
            "sender_name": "Shop",
            "sender_email": SENDER,
            "host": server.host,
            "port": str(server.port),
            "security": "none",
            "auth": "login",
            "login": "shop",
            "new_password": "pw",
            "backup_ids": "",
        }
        response = post_form(client, f"{ADMIN}/accounts/new/", form)

    assert response.status_code == 200
    page = text_of(response.get_data(as_text=True))
    assert "The account was not saved" in page and "AUTH challenge is not base64" in page
