"""Connections of routed letters: TLS modes, verification, timeouts, reuse and closing.

Connections are told apart by the client's address as the server saw it
(``Received.peer``): letters with the same peer came over one connection.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from apps import Site, make_site
from flask_mail import Message

from flask_smtp_accounts import DeliveryError, send_failed
from flask_smtp_accounts.testing import LOGIN, Certs, HangingServer, SMTPServer

RCPT = "bob@example.org"


def letter(sender: str = "hello@example.com", subject: str = "Hi") -> Message:
    return Message(subject, sender=sender, recipients=[RCPT], body="Hello.")


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(0.01)


class SessionSpy:
    """Server hooks that remember the server-side protocol object of every connection that sent MAIL."""

    def __init__(self) -> None:
        self.sessions: list[Any] = []

    async def handle_MAIL(self, server, session, envelope, address, options):  # noqa: N802 - aiosmtpd hook name
        if server not in self.sessions:
            self.sessions.append(server)
        return None

    def all_closed(self) -> bool:
        return all(server.transport is None for server in self.sessions)


class SlowData:
    """Server hooks that stall DATA until released (or ten seconds pass)."""

    def __init__(self) -> None:
        self.release = threading.Event()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd hook name
        for _ in range(1000):
            if self.release.is_set():
                break
            await asyncio.sleep(0.01)
        return "451 4.3.0 too late"


@pytest.fixture
def site_with(
    tmp_path: Path, encryption_key: str, certs: Certs, smtp_server: SMTPServer
) -> Iterator[Callable[..., Site]]:
    """``site_with(**config)``: a site like the ``site`` fixture, with extra config, inside its app context."""
    made: list[Site] = []
    contexts: list[Any] = []

    def make(**config: Any) -> Site:
        values: dict[str, Any] = {
            "SMTP_ACCOUNTS_ENCRYPTION_KEYS": encryption_key,
            "SMTP_ACCOUNTS_CA_FILE": str(certs.ca_cert),
            "MAIL_PORT": smtp_server.port,
        }
        values.update(config)
        site = make_site(tmp_path / f"instance{len(made)}", **values)
        context = site.app.app_context()
        context.push()
        made.append(site)
        contexts.append(context)
        return site

    yield make
    for site, context in zip(reversed(made), reversed(contexts), strict=True):
        site.db.session.remove()
        site.db.engine.dispose()
        context.pop()


# --- TLS modes ----------------------------------------------------------------


def test_ssl_account_uses_implicit_tls_and_logs_in(mail, add_account, ssl_server):
    add_account(ssl_server)

    mail.send(letter())

    [got] = ssl_server.wait_for(1)
    assert got.tls is True
    assert got.login == LOGIN


def test_starttls_account_upgrades_before_logging_in(mail, add_account, starttls_server):
    add_account(starttls_server)

    mail.send(letter())

    [got] = starttls_server.wait_for(1)
    assert got.tls is True
    assert got.login == LOGIN


def test_plain_account_with_auth_logs_in_without_tls(mail, add_account, auth_server):
    add_account(auth_server)

    mail.send(letter())

    [got] = auth_server.wait_for(1)
    assert (got.tls, got.login) == (False, LOGIN)


def test_starttls_is_required_never_a_plain_text_login(mail, add_account, auth_server):
    add_account(auth_server, security="starttls")  # the server offers no STARTTLS

    with pytest.raises(DeliveryError) as excinfo:
        mail.send(letter())

    assert excinfo.value.stage == "tls"
    assert "STARTTLS" in str(excinfo.value)
    assert auth_server.auth_attempts == []
    assert auth_server.received == []


def test_ssl_account_against_a_plain_server_fails_without_sending(
    mail, add_account, smtp_server, make_smtp_server
):
    plain = make_smtp_server()
    add_account(plain, security="ssl")

    with pytest.raises(DeliveryError) as excinfo:
        mail.send(letter())

    assert excinfo.value.stage in {"connect", "tls"}
    assert plain.received == [] and smtp_server.received == []


# --- certificate verification ---------------------------------------------------


def test_self_signed_certificate_is_refused_by_default(mail, add_account, selfsigned_server):
    account = add_account(selfsigned_server)
    assert account.verify_tls is True

    with pytest.raises(DeliveryError) as excinfo:
        mail.send(letter())

    assert excinfo.value.stage == "tls"
    assert "certificate verification failed" in str(excinfo.value)
    assert selfsigned_server.auth_attempts == []
    assert selfsigned_server.received == []


def test_per_account_opt_out_accepts_a_self_signed_server(
    mail, add_account, selfsigned_server, starttls_server
):
    add_account(selfsigned_server, sender_email="selfsigned@example.com", verify_tls=False)
    add_account(starttls_server, sender_email="verified@example.com")

    mail.send(letter("selfsigned@example.com"))
    mail.send(letter("verified@example.com"))

    [got] = selfsigned_server.wait_for(1)
    assert (got.tls, got.login) == (True, LOGIN)
    assert starttls_server.wait_for(1)[0].tls is True


def test_name_mismatch_is_refused(mail, add_account, make_smtp_server, certs):
    server = make_smtp_server(tls="ssl", cert=(certs.mismatch_cert, certs.mismatch_key))
    add_account(server)

    with pytest.raises(DeliveryError) as excinfo:
        mail.send(letter())

    assert excinfo.value.stage == "tls"
    assert server.received == []


@pytest.mark.parametrize("fixture", ["starttls_server", "ssl_server"])
def test_the_system_trust_store_is_used_when_no_ca_file_is_set(site_with, request, fixture):
    site = site_with(SMTP_ACCOUNTS_CA_FILE=None)
    server = request.getfixturevalue(fixture)
    site.ext.add_account(
        password="s3cret-Pässword",
        check=False,
        sender_email="hello@example.com",
        host=server.host,
        port=server.port,
        security=server.tls,
        auth="login",
        login=LOGIN,
    )

    with pytest.raises(DeliveryError) as excinfo:
        site.mail.send(letter())

    assert excinfo.value.stage == "tls"
    assert server.received == []


# --- timeout --------------------------------------------------------------------


def test_timeout_bounds_the_connect(ext, mail, add_account):
    ext.update_settings(timeout_s=1)
    with HangingServer() as hanging:
        ext.add_account(
            check=False,
            sender_email="hello@example.com",
            host=hanging.host,
            port=hanging.port,
            security="none",
            auth="none",
        )

        with pytest.raises(DeliveryError) as excinfo:
            mail.send(letter())

        assert hanging.connections == 1
    assert excinfo.value.stage == "connect"
    assert excinfo.value.reason.startswith("timeout")
    assert excinfo.value.temporary


def test_timeout_bounds_every_command(ext, mail, add_account, make_smtp_server):
    ext.update_settings(timeout_s=1)
    slow = SlowData()
    server = make_smtp_server(handler_hooks=slow)
    add_account(server)
    try:
        with pytest.raises(DeliveryError) as excinfo:
            mail.send(letter())
    finally:
        slow.release.set()

    assert excinfo.value.stage == "send"
    assert excinfo.value.reason.startswith("timeout")
    assert server.received == []


# --- reuse and closing in one mail.connect() block -------------------------------


def test_each_accounts_connection_is_opened_once_and_reused(mail, add_account, make_smtp_server, smtp_server):
    first, second = make_smtp_server(), make_smtp_server()
    add_account(first, sender_email="one@example.com")
    add_account(second, sender_email="two@example.com")

    with mail.connect() as conn:
        for n in range(3):
            conn.send(letter("one@example.com", f"one {n}"))
            conn.send(letter("two@example.com", f"two {n}"))
            conn.send(letter("other@example.com", f"own {n}"))

    for server, name in ((first, "one"), (second, "two"), (smtp_server, "own")):
        got = server.wait_for(3)
        assert [r.message["Subject"] for r in got] == [f"{name} {n}" for n in range(3)]
        assert len({r.peer for r in got}) == 1, (
            f"{name}: letters came over {len({r.peer for r in got})} connections"
        )


def test_a_new_block_opens_a_new_connection(mail, add_account, make_smtp_server):
    server = make_smtp_server()
    add_account(server)

    for _ in range(2):
        with mail.connect() as conn:
            conn.send(letter())

    first, second = server.wait_for(2)
    assert first.peer != second.peer


def test_every_connection_is_closed_at_the_end_of_the_block(mail, add_account, make_smtp_server, smtp_server):
    spies = [SessionSpy(), SessionSpy()]
    servers = [make_smtp_server(handler_hooks=spy) for spy in spies]
    add_account(servers[0], sender_email="one@example.com")
    add_account(servers[1], sender_email="two@example.com")

    with mail.connect() as conn:
        conn.send(letter("one@example.com"))
        conn.send(letter("two@example.com"))
        servers[0].wait_for(1)
        servers[1].wait_for(1)
        assert not any(spy.all_closed() for spy in spies), "closed before the end of the block"

    for spy in spies:
        assert len(spy.sessions) == 1
        wait_until(spy.all_closed, "the server saw the connection close")


def test_connections_are_closed_when_the_block_raises(mail, add_account, make_smtp_server):
    spy = SessionSpy()
    server = make_smtp_server(handler_hooks=spy)
    add_account(server)

    with pytest.raises(ZeroDivisionError), mail.connect() as conn:
        conn.send(letter())
        server.wait_for(1)
        1 / 0  # noqa: B018

    wait_until(spy.all_closed, "the server saw the connection close")


def test_quit_to_a_server_that_already_hung_up_is_not_an_error(mail, add_account, make_smtp_server):
    server = make_smtp_server()
    add_account(server)

    with mail.connect() as conn:
        conn.send(letter())
        server.wait_for(1)
        server.stop()  # the server goes away while the connection is idle

    assert len(server.received) == 1


def test_quit_to_flask_mails_own_server_that_hung_up_is_not_an_error(mail, smtp_server):
    with mail.connect() as conn:
        conn.send(letter("nobody-routed@example.com"))
        smtp_server.wait_for(1)
        smtp_server.stop()

    assert len(smtp_server.received) == 1


def test_failed_connection_raises_and_signals(mail, add_account, free_port_server):
    add_account(free_port_server)
    failures: list[dict[str, Any]] = []

    def record(app, **kwargs):
        failures.append(kwargs)

    with send_failed.connected_to(record), pytest.raises(DeliveryError) as excinfo:
        mail.send(letter())

    assert excinfo.value.stage == "connect"
    assert [f["error"] for f in failures] == [excinfo.value]


@pytest.fixture
def free_port_server() -> SMTPServer:
    """A server that was started and stopped: its port refuses connections."""
    server = SMTPServer().start()
    server.stop()
    return server


# --- MAIL_MAX_EMAILS ----------------------------------------------------------------


def test_max_emails_applies_per_account(site_with, make_smtp_server):
    site = site_with(MAIL_MAX_EMAILS=2)
    first, second = make_smtp_server(), make_smtp_server()
    for server, email in ((first, "one@example.com"), (second, "two@example.com")):
        site.ext.add_account(
            check=False, sender_email=email, host=server.host, port=server.port, security="none", auth="none"
        )

    with site.mail.connect() as conn:
        for n in range(5):
            conn.send(letter("one@example.com", f"one {n}"))
        for n in range(3):
            conn.send(letter("two@example.com", f"two {n}"))

    def connection_sizes(got):
        peers = [r.peer for r in got]
        return [peers.count(p) for p in dict.fromkeys(peers)]

    assert connection_sizes(first.wait_for(5)) == [2, 2, 1]
    assert connection_sizes(second.wait_for(3)) == [2, 1]


def test_max_emails_applies_to_flask_mails_own_server_too(site_with, smtp_server):
    site = site_with(MAIL_MAX_EMAILS=2)

    with site.mail.connect() as conn:
        for n in range(3):
            conn.send(letter("nobody-routed@example.com", f"own {n}"))

    peers = [r.peer for r in smtp_server.wait_for(3)]
    assert peers[0] == peers[1] != peers[2]
