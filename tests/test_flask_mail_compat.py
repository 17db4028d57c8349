"""Flask-Mail's own ways of sending keep working, and keep Flask-Mail's behaviour, while routed."""

from __future__ import annotations

import smtplib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import flask_mail
import pytest
from apps import Site, make_site
from flask_mail import BadHeaderError, Message, email_dispatched

from flask_smtp_accounts import message_sent
from flask_smtp_accounts.routing import RULE_LARGEST_ID, RULE_NO_ACCOUNT
from flask_smtp_accounts.testing import HangingServer, SMTPServer

RCPT = "bob@example.org"


def letter(sender: Any = "hello@example.com", subject: str = "Hi", **kwargs: Any) -> Message:
    kwargs.setdefault("recipients", [RCPT])
    return Message(subject, sender=sender, body="Hello.", **kwargs)


@pytest.fixture
def routed(add_account, make_smtp_server) -> SMTPServer:
    """The server of the account for hello@example.com (named "Account Name")."""
    server = make_smtp_server()
    add_account(server, sender_name="Account Name")
    return server


@pytest.fixture
def dispatched() -> Iterator[list[Message]]:
    """Every message Flask-Mail's ``email_dispatched`` reported."""
    seen: list[Message] = []

    def record(app: Any, message: Message) -> None:
        seen.append(message)

    with email_dispatched.connected_to(record):
        yield seen


@pytest.fixture
def sent_signals() -> Iterator[list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []

    def record(app: Any, **kwargs: Any) -> None:
        seen.append(kwargs)

    with message_sent.connected_to(record):
        yield seen


@pytest.fixture
def other_site(tmp_path: Path, encryption_key: str) -> Iterator[Callable[..., Site]]:
    """``other_site(**config)``: a second site (own SQLite file), inside its app context."""
    made: list[tuple[Site, Any]] = []

    def make(**config: Any) -> Site:
        site = make_site(
            tmp_path / f"other{len(made)}", SMTP_ACCOUNTS_ENCRYPTION_KEYS=encryption_key, **config
        )
        context = site.app.app_context()
        context.push()
        made.append((site, context))
        return site

    yield make
    for site, context in reversed(made):
        site.db.session.remove()
        site.db.engine.dispose()
        context.pop()


# --- every way of sending routes ------------------------------------------------


def test_mail_send_routes(mail, routed, smtp_server):
    mail.send(letter(subject="mail.send"))

    assert routed.wait_for(1)[0].message["Subject"] == "mail.send"
    assert smtp_server.received == []


def test_mail_send_message_routes(mail, routed, smtp_server):
    mail.send_message("mail.send_message", sender="hello@example.com", recipients=[RCPT], body="x")

    got = routed.wait_for(1)[0]
    assert got.message["Subject"] == "mail.send_message"
    assert got.message["From"] == "Account Name <hello@example.com>"
    assert smtp_server.received == []


def test_conn_send_msg_send_and_conn_send_message_route(mail, routed, smtp_server):
    with mail.connect() as conn:
        conn.send(letter(subject="conn.send"))
        letter(subject="msg.send").send(conn)
        conn.send_message("conn.send_message", sender="hello@example.com", recipients=[RCPT], body="x")

    got = routed.wait_for(3)
    assert [r.message["Subject"] for r in got] == ["conn.send", "msg.send", "conn.send_message"]
    assert smtp_server.received == []


def test_default_sender_from_config_routes(other_site, make_smtp_server, smtp_server):
    site = other_site(MAIL_DEFAULT_SENDER=("Default", "hello@example.com"), MAIL_PORT=smtp_server.port)
    server = make_smtp_server()
    site.ext.add_account(
        check=False,
        sender_email="hello@example.com",
        host=server.host,
        port=server.port,
        security="none",
        auth="none",
    )

    site.mail.send(Message("no sender given", recipients=[RCPT], body="x"))

    got = server.wait_for(1)[0]
    assert got.message["From"] == "Default <hello@example.com>"
    assert smtp_server.received == []


def test_the_connection_object_is_still_flask_mails(mail, ext, routed, smtp_server):
    with mail.connect() as conn:
        assert isinstance(conn, flask_mail.Connection)
        conn.send(letter())
        assert conn.num_emails == 0  # Flask-Mail counts the letters of its own conn.host
        assert isinstance(conn.host, smtplib.SMTP) and conn.host.sock.getpeername()[1] == smtp_server.port
        conn.send(letter("nobody@example.net", "Own"))
        assert conn.num_emails == 1
    assert [r.message["Subject"] for r in routed.wait_for(1)] == ["Hi"]
    assert [r.message["Subject"] for r in smtp_server.wait_for(1)] == ["Own"]
    assert [m.status for m in ext.messages().items] == ["sent", "sent"]


def test_a_letter_no_account_matches_goes_through_conn_host_even_when_the_site_patches_it(mail, ext, routed):
    """Flask-Mail's own tests patch ``conn.host``; the letter must reach that object, and still be logged."""
    with mail.connect() as conn, mock.patch.object(conn, "host") as host:
        conn.send(letter("nobody@example.net", "Own"))

    [(args, _)] = host.sendmail.call_args_list
    assert (args[0], args[1]) == ("nobody@example.net", [RCPT])
    [row] = ext.messages().items
    assert (row.status, row.route) == ("sent", "Flask-Mail default")
    assert routed.received == []


# --- email_dispatched and record_messages ------------------------------------------


def test_email_dispatched_fires_once_per_routed_letter(mail, routed, smtp_server, dispatched):
    first, second, third = letter(subject="1"), letter(subject="2"), letter("nobody@example.net", "3")
    with mail.connect() as conn:
        for message in (first, second, third):
            conn.send(message)

    assert dispatched == [first, second, third]
    routed.wait_for(2)
    smtp_server.wait_for(1)


def test_record_messages_while_routing(mail, routed):
    with mail.record_messages() as outbox:
        mail.send(letter(subject="recorded"))

    assert [m.subject for m in outbox] == ["recorded"]
    assert routed.wait_for(1)[0].message["Subject"] == "recorded"


# --- suppressed sending ---------------------------------------------------------------


@pytest.mark.parametrize(
    "config", [{"TESTING": True}, {"MAIL_SUPPRESS_SEND": True}], ids=["TESTING", "MAIL_SUPPRESS_SEND"]
)
def test_suppressed_sending_still_chooses_the_account_and_dispatches_once(
    other_site, make_smtp_server, smtp_server, dispatched, sent_signals, config
):
    site = other_site(MAIL_PORT=smtp_server.port, **config)
    assert site.mail.suppress
    server = make_smtp_server()
    account = site.ext.add_account(
        check=False,
        sender_email="hello@example.com",
        host=server.host,
        port=server.port,
        security="none",
        auth="none",
    )
    routed_letter, other_letter = letter(subject="routed"), letter("nobody@example.net", "own")

    with site.mail.record_messages() as outbox:
        site.mail.send(routed_letter)
        with site.mail.connect() as conn:
            conn.send(other_letter)

    assert outbox == [routed_letter, other_letter]
    assert dispatched == [routed_letter, other_letter]
    assert [(s["message"], s["account"].id if s["account"] else None, s["rule"]) for s in sent_signals] == [
        (routed_letter, account.id, RULE_LARGEST_ID),
        (other_letter, None, RULE_NO_ACCOUNT),
    ]
    assert server.received == [] and smtp_server.received == []


def test_suppressed_sending_opens_no_connection(other_site, dispatched):
    with HangingServer() as account_server, HangingServer() as own_server:
        site = other_site(TESTING=True, MAIL_PORT=own_server.port)
        site.ext.update_settings(timeout_s=1)
        site.ext.add_account(
            check=False,
            sender_email="hello@example.com",
            host=account_server.host,
            port=account_server.port,
            security="none",
            auth="none",
        )

        site.mail.send(letter())
        site.mail.send(letter("nobody@example.net"))

        assert len(dispatched) == 2
        assert (account_server.connections, own_server.connections) == (0, 0)


# --- Flask-Mail's checks, before any connection opens ----------------------------------


@pytest.fixture
def hanging_site(other_site) -> Iterator[tuple[Site, HangingServer, HangingServer]]:
    """A site whose account server and Flask-Mail server both count connections and never answer."""
    with HangingServer() as account_server, HangingServer() as own_server:
        site = other_site(MAIL_PORT=own_server.port)
        site.ext.update_settings(timeout_s=1)
        site.ext.add_account(
            check=False,
            sender_email="hello@example.com",
            host=account_server.host,
            port=account_server.port,
            security="none",
            auth="none",
        )
        yield site, account_server, own_server


BAD_HEADERS = {
    "subject": {"subject": "Hi\r\nBcc: victim@example.org"},
    "sender": {"sender": "hello@example.com\nBcc: victim@example.org"},
    "reply_to": {"reply_to": "x@example.com\r\nBcc: victim@example.org"},
    "recipient": {"recipients": ["bob@example.org\nBcc: victim@example.org"]},
}


@pytest.mark.parametrize("sender", ["hello@example.com", "nobody@example.net"], ids=["routed", "own-server"])
@pytest.mark.parametrize("bad", list(BAD_HEADERS.values()), ids=list(BAD_HEADERS))
def test_bad_headers_raise_before_any_connection(hanging_site, dispatched, bad, sender):
    site, account_server, own_server = hanging_site
    kwargs: dict[str, Any] = {"sender": sender, "subject": "Hi", **bad}
    message = letter(**kwargs)

    with pytest.raises(BadHeaderError):
        site.mail.send(message)

    assert dispatched == []
    assert (account_server.connections, own_server.connections) == (0, 0)


def test_missing_recipients_raise_as_before_without_connecting(hanging_site, dispatched):
    site, account_server, own_server = hanging_site

    with pytest.raises(AssertionError, match="No recipients have been added"):
        site.mail.send(letter(recipients=[]))

    assert dispatched == []
    assert (account_server.connections, own_server.connections) == (0, 0)


def test_missing_sender_raises_as_before_without_connecting(hanging_site, dispatched):
    site, account_server, own_server = hanging_site

    with pytest.raises(AssertionError, match="does not specify a sender"):
        site.mail.send(letter(sender=None))

    assert dispatched == []
    assert (account_server.connections, own_server.connections) == (0, 0)


def test_a_bad_letter_does_not_spoil_the_rest_of_the_block(mail, routed, dispatched):
    with mail.connect() as conn:
        with pytest.raises(BadHeaderError):
            conn.send(letter(subject="bad\nsubject"))
        conn.send(letter(subject="good"))

    assert [r.message["Subject"] for r in routed.wait_for(1)] == ["good"]
    assert [m.subject for m in dispatched] == ["good"]
