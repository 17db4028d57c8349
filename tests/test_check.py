"""``ext.check_account``: ok, or the stage that failed with the server's reply; never a password."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from flask_smtp_accounts import CheckResult
from flask_smtp_accounts.testing import LOGIN, PASSWORD, HangingServer, SMTPServer

WRONG = "Wr0ng-Пароль-42"


def account_for(server: Any, **fields: Any) -> dict[str, Any]:
    """An unsaved account (a mapping) for a test server."""
    tls = getattr(server, "tls", "none")
    values: dict[str, Any] = {
        "sender_email": "hello@example.com",
        "sender_name": "Hello",
        "host": server.host,
        "port": server.port,
        "security": tls,
        "auth": "login" if getattr(server, "credentials", None) else "none",
        "login": LOGIN if getattr(server, "credentials", None) else "",
    }
    values.update(fields)
    return values


def secret_forms(*passwords: str) -> list[str]:
    forms = []
    for password in passwords:
        raw = password.encode()
        forms += [
            password,
            base64.b64encode(raw).decode(),
            base64.b64encode(f"\0{LOGIN}\0{password}".encode()).decode(),
        ]
    return forms


def assert_no_secret(result: CheckResult) -> None:
    for text in (str(result), repr(result), result.message, result.reply or "", result.hint or ""):
        for form in secret_forms(PASSWORD, WRONG):
            assert form not in text, f"{form!r} leaked into {text!r}"


class Refuse:
    """Server hooks refusing the recipient or the data of a letter."""

    def __init__(self, at: str) -> None:
        self.at = at

    async def handle_RCPT(self, server, session, envelope, address, options):  # noqa: N802 - aiosmtpd hook
        return "550 5.1.1 No such user here" if self.at == "rcpt" else None

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd hook
        return "554 5.7.1 Message rejected as spam" if self.at == "data" else None


# --- ok ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["auth_server", "starttls_server", "ssl_server"])
def test_check_connects_and_logs_in(ext, request, fixture):
    server = request.getfixturevalue(fixture)

    result = ext.check_account(account_for(server), password=PASSWORD)

    assert result.ok and bool(result)
    assert (result.stage, result.code, result.reply, result.message_id) == (None, None, None, None)
    assert result.message.startswith("OK")
    assert isinstance(result.elapsed_s, float) and result.elapsed_s >= 0
    assert [(a.login, a.success) for a in server.auth_attempts] == [(LOGIN, True)]
    assert server.received == []
    assert_no_secret(result)


def test_check_of_a_saved_account_uses_its_stored_password(ext, add_account, auth_server):
    account = add_account(auth_server)

    assert ext.check_account(account).ok
    assert ext.check_account(ext.account_info(account)).ok
    result = ext.check_account(account, password=WRONG)  # a password given overrides the stored one
    assert (result.ok, result.stage, result.code) == (False, "login", 535)
    assert_no_secret(result)


def test_check_sends_a_test_letter_when_asked(ext, auth_server):
    ext.update_settings(test_recipient="admin@example.org")

    result = ext.check_account(account_for(auth_server), password=PASSWORD, send_test=True)

    assert result.ok
    [got] = auth_server.wait_for(1)
    assert got.rcpt_tos == ["admin@example.org"]
    assert got.mail_from == "hello@example.com"
    assert got.message["From"] == "Hello <hello@example.com>"
    assert got.message_id == result.message_id
    assert result.message_id in result.message


def test_the_setting_decides_whether_a_check_sends_a_test_letter(ext, auth_server):
    ext.update_settings(test_recipient="admin@example.org")
    assert ext.check_account(account_for(auth_server), password=PASSWORD).ok
    assert auth_server.received == []

    ext.update_settings(send_test_on_check=True)
    assert ext.check_account(account_for(auth_server), password=PASSWORD).ok
    assert auth_server.wait_for(1)[0].rcpt_tos == ["admin@example.org"]
    assert ext.check_account(account_for(auth_server), password=PASSWORD, send_test=False).ok
    assert len(auth_server.received) == 1


def test_send_test_letter_to_a_given_recipient(ext, add_account, starttls_server):
    account = add_account(starttls_server)

    result = ext.send_test_letter(account, "someone@example.org")

    assert result.ok
    [got] = starttls_server.wait_for(1)
    assert (got.rcpt_tos, got.tls, got.login) == (["someone@example.org"], True, LOGIN)


# --- each failing stage ---------------------------------------------------------------------


def test_connection_refused_fails_at_connect(ext):
    server = SMTPServer().start()
    server.stop()

    result = ext.check_account(account_for(server))

    assert (result.ok, bool(result), result.stage) == (False, False, "connect")
    assert f"127.0.0.1:{server.port}" in result.message
    assert_no_secret(result)


def test_a_silent_server_fails_at_connect_with_timeout(ext):
    ext.update_settings(timeout_s=1)
    with HangingServer() as hanging:
        result = ext.check_account(account_for(hanging, auth="login", login=LOGIN), password=PASSWORD)
    assert (result.ok, result.stage) == (False, "connect")
    assert "timeout" in result.message


def test_untrusted_certificate_fails_at_tls(ext, selfsigned_server):
    result = ext.check_account(account_for(selfsigned_server), password=PASSWORD)

    assert (result.ok, result.stage) == (False, "tls")
    assert "certificate" in result.message
    assert selfsigned_server.auth_attempts == []
    assert ext.check_account(account_for(selfsigned_server, verify_tls=False), password=PASSWORD).ok


def test_missing_starttls_fails_at_tls_before_any_login(ext, auth_server):
    result = ext.check_account(account_for(auth_server, security="starttls"), password=PASSWORD)

    assert (result.ok, result.stage) == (False, "tls")
    assert "STARTTLS" in result.message
    assert auth_server.auth_attempts == []


@pytest.mark.parametrize("fixture", ["auth_server", "starttls_server", "ssl_server"])
def test_wrong_password_fails_at_login_with_the_servers_reply(ext, request, fixture):
    server = request.getfixturevalue(fixture)

    result = ext.check_account(account_for(server), password=WRONG)

    assert (result.ok, result.stage, result.code) == (False, "login", 535)
    assert result.reply and result.reply in result.message
    attempts = server.auth_attempts
    assert attempts and all((a.login, a.success) == (LOGIN, False) for a in attempts)
    assert_no_secret(result)


@pytest.mark.parametrize(("at", "code"), [("rcpt", 550), ("data", 554)])
def test_refused_test_letter_fails_at_test_letter(ext, make_smtp_server, at, code):
    server = make_smtp_server(auth=(LOGIN, PASSWORD), handler_hooks=Refuse(at))

    ext.update_settings(test_recipient="admin@example.org")

    result = ext.check_account(account_for(server), password=PASSWORD, send_test=True)

    assert (result.ok, result.stage, result.code) == (False, "test letter", code)
    assert server.received == []
    assert_no_secret(result)


def test_test_letter_without_recipient_fails_before_connecting(ext):
    with HangingServer() as hanging:
        result = ext.check_account(account_for(hanging), send_test=True)
        assert hanging.connections == 0
    assert (result.ok, result.stage) == (False, "test letter")
    assert "recipient" in result.message


def test_a_failed_check_leaves_no_password_in_the_instance_folder(ext, app, auth_server, tmp_path):
    ext.check_account(account_for(auth_server), password=WRONG, send_test=True)
    ext.check_account(account_for(auth_server), password=PASSWORD)

    leaks = []
    for path in (p for p in tmp_path.rglob("*") if p.is_file()):
        data = path.read_bytes()
        leaks += [(path.name, form) for form in secret_forms(PASSWORD, WRONG) if form.encode() in data]
    assert leaks == []
