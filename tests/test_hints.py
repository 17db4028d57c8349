"""Fix-it hints: each classic mistake reproduced against a local server (issue 8).

The hint is what an administrator reads under a failed check or send:
it must name the setting to change.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask_mail import Message
from provider_replies import GMAIL_535, MICROSOFT_5_7_30, MICROSOFT_5_7_139, MICROSOFT_SECURITY_DEFAULTS

from flask_smtp_accounts import DeliveryError
from flask_smtp_accounts.hints import hint_for
from flask_smtp_accounts.testing import LOGIN, PASSWORD, Certs, SMTPServer


def account(server: SMTPServer, **fields: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "sender_email": "hello@example.com",
        "host": server.host,
        "port": server.port,
        "security": "starttls",
        "auth": "login",
        "login": LOGIN,
    }
    values.update(fields)
    return values


def test_ssl_chosen_for_a_starttls_port(ext, starttls_server):
    result = ext.check_account(account(starttls_server, security="ssl"), password=PASSWORD)

    assert not result.ok and result.stage == "tls"
    assert "WRONG_VERSION_NUMBER" in result.message
    assert f"Port {starttls_server.port} answers in plain text" in (result.hint or "")
    assert "Choose STARTTLS" in (result.hint or "")


def test_starttls_chosen_for_an_ssl_port(ext, ssl_server):
    ext.update_settings(timeout_s=1)

    result = ext.check_account(account(ssl_server, security="starttls"), password=PASSWORD)

    assert not result.ok and result.stage == "connect" and "timeout" in result.message
    assert "choose SSL" in (result.hint or "")
    assert ssl_server.auth_attempts == []


def test_gmail_refusing_the_account_password(ext, certs: Certs):
    with SMTPServer(
        tls="starttls",
        cert=(certs.server_cert, certs.server_key),
        auth=(LOGIN, "app-password"),
        auth_reply=GMAIL_535,
    ) as gmail:
        result = ext.check_account(account(gmail), password=PASSWORD)

    assert not result.ok and result.stage == "login" and result.code == 535
    assert "gsmtp" in (result.reply or "")
    assert "app password" in (result.hint or "")
    assert "OAuth2 with provider Google" in (result.hint or "")


@pytest.mark.parametrize(
    ("reply", "advice"),
    [
        (MICROSOFT_5_7_30, "no longer accepts a password"),
        (MICROSOFT_5_7_139, "SmtpClientAuthenticationDisabled $false"),
        (MICROSOFT_SECURITY_DEFAULTS, "security defaults"),
    ],
)
def test_microsoft_refusing_basic_authentication(ext, certs: Certs, reply, advice):
    with SMTPServer(
        tls="starttls", cert=(certs.server_cert, certs.server_key), auth=(LOGIN, "other"), auth_reply=reply
    ) as office365:
        result = ext.check_account(account(office365), password=PASSWORD)

    assert not result.ok and result.stage == "login"
    assert advice in (result.hint or "")
    assert "OAuth2 with provider Microsoft" in (result.hint or "")


def test_certificate_issued_for_another_name(ext, certs: Certs):
    with SMTPServer(
        tls="starttls", cert=(certs.mismatch_cert, certs.mismatch_key), auth=(LOGIN, PASSWORD)
    ) as server:
        result = ext.check_account(account(server), password=PASSWORD)

    assert not result.ok and result.stage == "tls"
    assert "not valid for '127.0.0.1'" in result.message
    assert result.hint == (
        "The server's certificate is issued for wrong.example, not for 127.0.0.1. Enter one of these"
        " names as the mail server address instead of 127.0.0.1."
    )


def test_self_signed_certificate(ext, selfsigned_server):
    result = ext.check_account(account(selfsigned_server), password=PASSWORD)

    assert not result.ok and result.stage == "tls"
    assert "SMTP_ACCOUNTS_CA_FILE" in (result.hint or "")


def test_an_ordinary_wrong_password_gets_no_hint(ext, starttls_server):
    result = ext.check_account(account(starttls_server), password="wrong")

    assert not result.ok and result.code == 535
    assert result.hint is None


def test_a_send_computes_no_hint_but_its_error_carries_what_one_needs(
    ext, mail, add_account, starttls_server
):
    """A hint may probe the server; ``mail.send`` must not wait for that. Where errors are shown, it is worked out."""
    account = add_account(starttls_server, security="ssl")

    with pytest.raises(DeliveryError) as failed:
        mail.send(Message("Hi", sender="hello@example.com", recipients=["bob@example.org"], body="x"))

    assert failed.value.hint is None
    assert "Choose STARTTLS" in (hint_for(failed.value, failed.value.cause, account) or "")
    assert starttls_server.received == []
