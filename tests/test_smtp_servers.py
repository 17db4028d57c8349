"""Checks of the test SMTP servers themselves, driven by the standard library client only."""

from __future__ import annotations

import base64
import gc
import smtplib
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from flask_smtp_accounts.testing import (
    LOGIN,
    PASSWORD,
    Certs,
    ClosingServer,
    HangingServer,
    SMTPServer,
)

# The test SMTP servers themselves, driven by smtplib: no site, no database.
pytestmark = pytest.mark.one_database

TIMEOUT = 5


@pytest.fixture(autouse=True)
def _no_leftovers() -> Iterator[None]:
    """Fail when a test leaves a thread running, or garbage that warns (ResourceWarning) when collected."""
    before = set(threading.enumerate())
    yield
    gc.collect()
    leaked = [thread for thread in threading.enumerate() if thread not in before]
    assert not leaked, f"threads left running: {leaked}"


def _message(subject: str = "Grüße") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Sender <sender@example.com>"
    message["To"] = "rcpt@example.org"
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="example.com")
    message.set_content("Hello, wörld.\n.leading dot\n")
    return message


def _auth_plain(client: smtplib.SMTP, login: str, password: str) -> tuple[int, bytes]:
    """AUTH PLAIN with UTF-8 credentials (``smtplib.SMTP.login`` only encodes ASCII, cpython#73936)."""
    token = base64.b64encode(b"\0" + login.encode() + b"\0" + password.encode()).decode()
    return client.docmd("AUTH", f"PLAIN {token}")


def _auth_login(client: smtplib.SMTP, login: str, password: str) -> tuple[int, bytes]:
    """AUTH LOGIN with UTF-8 credentials."""
    code, _ = client.docmd("AUTH", "LOGIN " + base64.b64encode(login.encode()).decode())
    assert code == 334
    return client.docmd(base64.b64encode(password.encode()).decode())


def _trusting(certfile: object) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certfile))


def test_plain_send_arrives_with_envelope(smtp_server: SMTPServer) -> None:
    message = _message()
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=TIMEOUT) as client:
        client.ehlo()
        assert not client.has_extn("auth")
        data = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
        refused = client.sendmail("bounce@example.com", ["a@example.org", "b@example.net"], data)
    assert refused == {}

    [received] = smtp_server.wait_for(1)
    assert received.mail_from == "bounce@example.com"
    assert received.rcpt_tos == ["a@example.org", "b@example.net"]
    assert received.login is None
    assert received.tls is False
    assert received.peer[0] == "127.0.0.1"
    assert received.message["From"] == "Sender <sender@example.com>"
    assert received.message["Subject"] == "Grüße"
    assert received.message_id == message["Message-ID"]
    assert received.message.get_content() == "Hello, wörld.\n.leading dot\n"
    assert received.data.endswith(b"\r\n.leading dot\r\n")
    assert smtp_server.received == [received]


def test_messages_are_kept_in_order_and_cleared(smtp_server: SMTPServer) -> None:
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=TIMEOUT) as client:
        for n in range(3):
            client.send_message(_message(f"n{n}"))
    assert [r.message["Subject"] for r in smtp_server.wait_for(3)] == ["n0", "n1", "n2"]
    smtp_server.clear()
    assert smtp_server.received == []
    assert smtp_server.auth_attempts == []


def test_wait_for_times_out_with_clear_message(smtp_server: SMTPServer) -> None:
    with pytest.raises(AssertionError, match=r"expected 1 message\(s\) within 0.2s, got 0"):
        smtp_server.wait_for(1, timeout=0.2)


@pytest.mark.parametrize("authenticate", [_auth_plain, _auth_login], ids=["PLAIN", "LOGIN"])
def test_auth_with_right_password(
    auth_server: SMTPServer, authenticate: Callable[[smtplib.SMTP, str, str], tuple[int, bytes]]
) -> None:
    with smtplib.SMTP(auth_server.host, auth_server.port, timeout=TIMEOUT) as client:
        client.ehlo()
        assert set(client.esmtp_features["auth"].split()) == {"PLAIN", "LOGIN"}
        code, _ = authenticate(client, LOGIN, PASSWORD)
        assert code == 235
        client.send_message(_message())

    [received] = auth_server.wait_for(1)
    assert received.login == LOGIN
    assert received.tls is False
    mechanism = authenticate.__name__.removeprefix("_auth_").upper()
    assert auth_server.auth_attempts == [(mechanism, LOGIN, True)]


def test_auth_with_wrong_password_is_refused(auth_server: SMTPServer) -> None:
    with smtplib.SMTP(auth_server.host, auth_server.port, timeout=TIMEOUT) as client:
        with pytest.raises(smtplib.SMTPAuthenticationError) as excinfo:
            client.login(LOGIN, "wrong password")
        assert excinfo.value.smtp_code == 535
        code, _ = _auth_plain(client, LOGIN, PASSWORD[:-1])
        assert code == 535
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.send_message(_message())
        assert refused.value.smtp_code == 530

    assert auth_server.received == []
    attempts = auth_server.auth_attempts
    assert attempts and all(a.login == LOGIN and not a.success for a in attempts)
    assert not any(PASSWORD in repr(a) or "wrong password" in repr(a) for a in attempts)


def test_mail_without_auth_is_refused(auth_server: SMTPServer) -> None:
    with smtplib.SMTP(auth_server.host, auth_server.port, timeout=TIMEOUT) as client:
        with pytest.raises(smtplib.SMTPSenderRefused) as excinfo:
            client.send_message(_message())
    assert excinfo.value.smtp_code == 530
    assert auth_server.received == []


def test_starttls_with_trusted_ca(starttls_server: SMTPServer, certs: Certs) -> None:
    with smtplib.SMTP(starttls_server.host, starttls_server.port, timeout=TIMEOUT) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        assert not client.has_extn("auth")
        client.starttls(context=_trusting(certs.ca_cert))
        client.ehlo()
        assert not client.has_extn("starttls")
        assert client.has_extn("auth")
        assert _auth_plain(client, LOGIN, PASSWORD)[0] == 235
        client.send_message(_message())

    [received] = starttls_server.wait_for(1)
    assert received.tls is True
    assert received.login == LOGIN


def test_starttls_with_system_trust_store_fails_verification(starttls_server: SMTPServer) -> None:
    with smtplib.SMTP(starttls_server.host, starttls_server.port, timeout=TIMEOUT) as client:
        with pytest.raises(ssl.SSLCertVerificationError):
            client.starttls(context=ssl.create_default_context())
        client.close()
    assert starttls_server.received == []


def test_starttls_required_before_auth_and_mail(starttls_server: SMTPServer) -> None:
    with smtplib.SMTP(starttls_server.host, starttls_server.port, timeout=TIMEOUT) as client:
        client.ehlo()
        assert _auth_plain(client, LOGIN, PASSWORD) == (530, b"Must issue a STARTTLS command first")
        assert client.mail("sender@example.com") == (530, b"Must issue a STARTTLS command first")
        assert client.rcpt("rcpt@example.org")[0] == 530
    assert starttls_server.auth_attempts == []
    assert starttls_server.received == []


def test_implicit_tls_with_trusted_ca(ssl_server: SMTPServer, certs: Certs) -> None:
    with smtplib.SMTP_SSL(
        ssl_server.host, ssl_server.port, timeout=TIMEOUT, context=_trusting(certs.ca_cert)
    ) as client:
        client.ehlo()
        assert not client.has_extn("starttls")
        assert client.has_extn("auth")
        with pytest.raises(smtplib.SMTPSenderRefused):
            client.send_message(_message())
        assert _auth_login(client, LOGIN, PASSWORD)[0] == 235
        client.send_message(_message())

    [received] = ssl_server.wait_for(1)
    assert received.tls is True
    assert received.login == LOGIN


def test_implicit_tls_with_system_trust_store_fails_verification(ssl_server: SMTPServer) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        smtplib.SMTP_SSL(
            ssl_server.host, ssl_server.port, timeout=TIMEOUT, context=ssl.create_default_context()
        )
    assert ssl_server.received == []


def test_selfsigned_certificate_is_not_trusted_via_the_ca(
    selfsigned_server: SMTPServer, certs: Certs
) -> None:
    with smtplib.SMTP(selfsigned_server.host, selfsigned_server.port, timeout=TIMEOUT) as client:
        with pytest.raises(ssl.SSLCertVerificationError, match="self.signed certificate"):
            client.starttls(context=_trusting(certs.ca_cert))
        client.close()


def test_selfsigned_certificate_can_be_pinned(selfsigned_server: SMTPServer, certs: Certs) -> None:
    with smtplib.SMTP(selfsigned_server.host, selfsigned_server.port, timeout=TIMEOUT) as client:
        client.starttls(context=_trusting(certs.selfsigned_cert))
        client.ehlo()
        assert _auth_plain(client, LOGIN, PASSWORD)[0] == 235
        client.send_message(_message())
    assert selfsigned_server.wait_for(1)[0].tls is True


@pytest.mark.parametrize("tls", ["starttls", "ssl"])
def test_name_mismatch_fails_verification(
    make_smtp_server: Callable[..., SMTPServer], certs: Certs, tls: str
) -> None:
    server = make_smtp_server(tls=tls, cert=(certs.mismatch_cert, certs.mismatch_key))
    context = _trusting(certs.ca_cert)
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        if tls == "ssl":
            smtplib.SMTP_SSL(server.host, server.port, timeout=TIMEOUT, context=context)
        else:
            with smtplib.SMTP(server.host, server.port, timeout=TIMEOUT) as client:
                try:
                    client.starttls(context=context)
                finally:
                    client.close()


def test_make_smtp_server_gives_independent_started_servers(
    make_smtp_server: Callable[..., SMTPServer],
) -> None:
    first, second = make_smtp_server(), make_smtp_server(auth=("ascii", "password"))
    assert first.port != second.port
    with smtplib.SMTP(second.host, second.port, timeout=TIMEOUT) as client:
        client.login("ascii", "password")
        client.send_message(_message())
    assert second.wait_for(1)[0].login == "ascii"
    assert first.received == []


def test_handler_hooks_override_and_fall_through(make_smtp_server: Callable[..., SMTPServer]) -> None:
    class Hooks:
        async def handle_RCPT(
            self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
        ) -> str | None:
            return "550 5.1.1 No such user" if address.startswith("nobody@") else None

        async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str | None:
            return (
                "451 4.3.0 Try again later"
                if b"Subject: fail" in (envelope.original_content or b"")
                else None
            )

    server = make_smtp_server(handler_hooks=Hooks())
    with smtplib.SMTP(server.host, server.port, timeout=TIMEOUT) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.sendmail("s@example.com", ["nobody@example.org"], b"Subject: x\r\n\r\nx\r\n")
        with pytest.raises(smtplib.SMTPDataError) as excinfo:
            client.sendmail("s@example.com", ["a@example.org"], b"Subject: fail\r\n\r\nx\r\n")
        assert excinfo.value.smtp_code == 451
        client.sendmail("s@example.com", ["a@example.org", "nobody@example.org"], b"Subject: ok\r\n\r\nx\r\n")
    [received] = server.wait_for(1)
    assert received.rcpt_tos == ["a@example.org"]


@pytest.mark.parametrize("tls", ["none", "starttls", "ssl"])
def test_stop_closes_open_client_connections(certs: Certs, tls: str) -> None:
    cert = None if tls == "none" else (certs.server_cert, certs.server_key)
    server = SMTPServer(tls=tls, cert=cert, auth=(LOGIN, PASSWORD)).start()
    context = _trusting(certs.ca_cert)
    client = (
        smtplib.SMTP_SSL(server.host, server.port, timeout=TIMEOUT, context=context)
        if tls == "ssl"
        else smtplib.SMTP(server.host, server.port, timeout=TIMEOUT)
    )
    try:
        if tls == "starttls":
            client.starttls(context=context)
        client.ehlo()
        server.stop()
        server.stop()
        with pytest.raises(smtplib.SMTPServerDisconnected):
            client.noop()
    finally:
        client.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((server.host, server.port), timeout=TIMEOUT).close()


def test_server_rejects_bad_configuration(certs: Certs) -> None:
    with pytest.raises(ValueError, match="tls must be one of"):
        SMTPServer(tls="tls")
    with pytest.raises(ValueError, match="needs cert"):
        SMTPServer(tls="ssl")
    with pytest.raises(ValueError, match="require_starttls"):
        SMTPServer(require_starttls=True)


def test_hanging_server_makes_client_time_out() -> None:
    with HangingServer() as hanging:
        with pytest.raises(smtplib.SMTPServerDisconnected, match="timed out") as excinfo:
            smtplib.SMTP(hanging.host, hanging.port, timeout=1)
        assert isinstance(excinfo.value.__context__, TimeoutError)
        assert hanging.connections == 1


def test_closing_server_disconnects_client() -> None:
    with ClosingServer() as closing:
        with pytest.raises(smtplib.SMTPServerDisconnected):
            smtplib.SMTP(closing.host, closing.port, timeout=TIMEOUT)
        with pytest.raises(smtplib.SMTPServerDisconnected):
            smtplib.SMTP(closing.host, closing.port, timeout=TIMEOUT)
        assert closing.connections == 2
