"""Signals on the extension's own namespace: what they carry, and that they fire once per event."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from blinker import Signal
from flask_mail import Message

from flask_smtp_accounts import (
    AccountInfo,
    CheckResult,
    DeliveryError,
    account_checked,
    message_sent,
    send_failed,
)
from flask_smtp_accounts.routing import RULE_BULK_NAME, RULE_LARGEST_ID, RULE_NO_ACCOUNT
from flask_smtp_accounts.signals import signals
from flask_smtp_accounts.testing import PASSWORD, SMTPServer


def letter(sender: str = "hello@example.com", subject: str = "Hi", **kwargs: Any) -> Message:
    return Message(subject, sender=sender, recipients=["bob@example.org"], body="Hello.", **kwargs)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, dict[str, Any]]] = []

    def __call__(self, sender: Any, **kwargs: Any) -> None:
        self.calls.append((sender, kwargs))


@pytest.fixture
def record() -> Iterator[Any]:
    """``record(signal)``: a recorder connected to ``signal`` for the test."""
    connected: list[tuple[Signal, Recorder]] = []

    def connect(signal: Signal) -> Recorder:
        recorder = Recorder()
        signal.connect(recorder)
        connected.append((signal, recorder))
        return recorder

    yield connect
    for signal, recorder in connected:
        signal.disconnect(recorder)


@pytest.mark.one_database
def test_signals_live_on_the_extensions_own_namespace():
    assert signals.get("message-sent") is message_sent
    assert signals.get("send-failed") is send_failed
    assert signals.get("account-checked") is account_checked
    for signal in (message_sent, send_failed, account_checked):
        assert signal.__doc__ and "Keyword arguments" in signal.__doc__


def test_message_sent_carries_the_letter_the_account_and_the_rule(
    app, mail, add_account, make_smtp_server, smtp_server, record
):
    sent = record(message_sent)
    failed = record(send_failed)
    first, second = make_smtp_server(), make_smtp_server()
    named = add_account(first, sender_name="News")
    largest = add_account(second)
    routed, bulk, unrouted = (
        letter(),
        letter("News <hello@example.com>", extra_headers={"Precedence": "bulk"}),
        letter("x@example.net"),
    )

    with mail.connect() as conn:
        for message in (routed, bulk, unrouted):
            conn.send(message)

    assert [
        (s, k["message"], k["account"].id if k["account"] else None, k["rule"], k["suppressed"])
        for s, k in sent.calls
    ] == [
        (app, routed, largest.id, RULE_LARGEST_ID, False),
        (app, bulk, named.id, RULE_BULK_NAME, False),
        (app, unrouted, None, RULE_NO_ACCOUNT, False),
    ]
    assert all(isinstance(k["account"], AccountInfo) for _, k in sent.calls[:2])
    assert failed.calls == []
    for server in (first, second, smtp_server):
        assert len(server.wait_for(1)) == 1


def test_message_sent_fires_after_the_server_accepted(mail, add_account, make_smtp_server):
    server = make_smtp_server()
    add_account(server)
    seen_by_server: list[int] = []

    def count_received(app: Any, **kwargs: Any) -> None:
        seen_by_server.append(len(server.received))

    with message_sent.connected_to(count_received):
        mail.send(letter())

    assert seen_by_server == [1]


def test_send_failed_carries_the_letter_the_account_and_the_error(
    app, mail, add_account, auth_server, record
):
    sent = record(message_sent)
    failed = record(send_failed)
    account = add_account(auth_server, password="wrong password")
    message = letter()

    with pytest.raises(DeliveryError) as excinfo:
        mail.send(message)

    [(sender, kwargs)] = failed.calls
    assert sender is app
    assert kwargs["message"] is message
    assert kwargs["account"].id == account.id
    assert kwargs["error"] is excinfo.value
    assert (kwargs["error"].stage, kwargs["error"].code) == ("login", 535)
    assert PASSWORD not in str(kwargs["error"]) and "wrong password" not in str(kwargs["error"])
    assert sent.calls == []


def test_a_resend_names_its_letter_by_message_id(app, ext, mail, add_account, make_smtp_server, record):
    from misbehaving import Refuse

    sent = record(message_sent)
    failed = record(send_failed)
    server = make_smtp_server(handler_hooks=Refuse("DATA", "451 4.3.0 Try later", times=1))
    add_account(server)
    message = letter()
    with pytest.raises(DeliveryError) as excinfo:
        mail.send(message)

    ext.resend_message(excinfo.value.record_id)

    [(_, failure)] = failed.calls
    [(_, delivery)] = sent.calls
    assert (failure["message"], failure["message_id"]) == (message, message.msgId)
    assert (delivery["message"], delivery["message_id"]) == (None, message.msgId)
    assert server.wait_for(1)[0].message_id == message.msgId


def test_a_refused_recipient_is_a_failure_not_a_sent_letter(mail, add_account, make_smtp_server, record):
    class RefuseAll:
        async def handle_RCPT(self, server, session, envelope, address, options):  # noqa: N802 - aiosmtpd hook
            return "550 5.1.1 No such user"

    server: SMTPServer = make_smtp_server(handler_hooks=RefuseAll())
    add_account(server)
    sent = record(message_sent)
    failed = record(send_failed)

    with pytest.raises(DeliveryError):
        mail.send(letter())

    assert sent.calls == []
    assert len(failed.calls) == 1
    assert failed.calls[0][1]["error"].code == 550


def test_account_checked_carries_the_account_and_the_result(app, ext, add_account, auth_server, record):
    checked = record(account_checked)
    account = add_account(auth_server)

    ok = ext.check_account(account)
    bad = ext.check_account(
        {
            "sender_email": "new@example.com",
            "host": auth_server.host,
            "port": auth_server.port,
            "security": "none",
            "auth": "login",
            "login": "user@example.com",
        },
        password="nope",
    )

    assert [(s, k["account"].id, k["result"]) for s, k in checked.calls] == [
        (app, account.id, ok),
        (app, 0, bad),
    ]
    assert isinstance(ok, CheckResult) and ok.ok and not bad.ok


def test_suppressed_letters_are_reported_as_suppressed(tmp_path, encryption_key, make_smtp_server, record):
    from apps import make_site

    site = make_site(tmp_path / "testing", TESTING=True, SMTP_ACCOUNTS_ENCRYPTION_KEYS=encryption_key)
    server = make_smtp_server()
    sent = record(message_sent)
    with site.app.app_context():
        site.ext.add_account(
            check=False,
            sender_email="hello@example.com",
            host=server.host,
            port=server.port,
            security="none",
            auth="none",
        )
        site.mail.send(letter())
        site.db.session.remove()
        site.db.engine.dispose()

    [(_, kwargs)] = sent.calls
    assert kwargs["suppressed"] is True and kwargs["rule"] == RULE_LARGEST_ID
    assert server.received == []
