"""Faults survived: each against a real misbehaving server on 127.0.0.1.

For every fault: what the caller sees, what the message log says, and that
with a backup account configured the letter arrives once, through the
backup. The README's "Faults and what happens" table mirrors these tests.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask_mail import Message
from misbehaving import Refuse, ScriptedServer

from flask_smtp_accounts import DeliveryError
from flask_smtp_accounts.testing import LOGIN, PASSWORD, HangingServer, free_port

RECIPIENTS = ["ann@example.org"]


def letter(subject: str = "Order 1", **kw: Any) -> Message:
    values: dict[str, Any] = {
        "sender": "Shop <shop@example.com>",
        "recipients": list(RECIPIENTS),
        "body": "Thanks.",
    }
    values.update(kw)
    return Message(subject, **values)


@dataclass(frozen=True)
class Fault:
    """What a fault must look like to the caller and in the message log."""

    stage: str
    code: int | None
    reason: str
    command: str | None = None
    #: A connection-level failure: the account cools down.
    cools_down: bool = True


FAULTS = {
    "connection refused": Fault("connect", None, r"[Cc]onnection refused"),
    "never greets": Fault("connect", None, r"timeout"),
    "421 at greeting": Fault("connect", 421, r"refused the connection.*421 4\.3\.2 Not now"),
    "535 login refused": Fault("login", 535, r"refused the login.*535"),
    "451 on MAIL": Fault("send", 451, r"refused the sender.*451 4\.3\.0 Busy", "MAIL", cools_down=False),
    "451 on RCPT": Fault(
        "send", 451, r"every recipient was refused.*451 4\.2\.0 Later", "RCPT", cools_down=False
    ),
    "451 on DATA": Fault(
        "send", 451, r"refused the letter's data.*451 4\.3\.0 Later", "DATA", cools_down=False
    ),
    "dropped in DATA": Fault("send", None, r"closed the connection|reset", "DATA"),
    "STARTTLS not offered": Fault("tls", None, r"does not offer STARTTLS"),
    "invalid certificate": Fault("tls", None, r"certificate verification failed"),
}


@contextlib.contextmanager
def faulty(name: str, make_smtp_server: Any, certs: Any) -> Iterator[dict[str, Any]]:
    """Start the misbehaving server of ``name``; yield the account fields that reach it."""
    plain = {"host": "127.0.0.1", "security": "none", "auth": "none"}
    with contextlib.ExitStack() as stack:
        if name == "connection refused":
            yield {**plain, "port": free_port()}
        elif name == "never greets":
            yield {**plain, "port": stack.enter_context(HangingServer()).port}
        elif name == "421 at greeting":
            yield {**plain, "port": stack.enter_context(ScriptedServer(greeting="421 4.3.2 Not now")).port}
        elif name == "535 login refused":
            server = make_smtp_server(auth=(LOGIN, PASSWORD))
            yield {
                **plain,
                "port": server.port,
                "auth": "login",
                "login": LOGIN,
                "password": "wrong password",
            }
        elif name.startswith("451 on "):
            command = name.rsplit(" ", 1)[1]
            reply = {"MAIL": "451 4.3.0 Busy", "RCPT": "451 4.2.0 Later", "DATA": "451 4.3.0 Later"}[command]
            yield {**plain, "port": make_smtp_server(handler_hooks=Refuse(command, reply)).port}
        elif name == "dropped in DATA":
            yield {**plain, "port": stack.enter_context(ScriptedServer(data="drop-in-data")).port}
        elif name == "STARTTLS not offered":
            yield {**plain, "port": make_smtp_server().port, "security": "starttls"}
        elif name == "invalid certificate":
            server = make_smtp_server(
                tls="starttls", cert=(certs.selfsigned_cert, certs.selfsigned_key), auth=(LOGIN, PASSWORD)
            )
            yield {
                **plain,
                "port": server.port,
                "security": "starttls",
                "auth": "login",
                "login": LOGIN,
                "password": PASSWORD,
            }
        else:
            raise AssertionError(name)


def add(ext: Any, fields: dict[str, Any], **more: Any) -> int:
    values = {"sender_email": "shop@example.com", **fields, **more}
    password = values.pop("password", None)
    return int(ext.add_account(password=password, check=False, **values).id)


@pytest.fixture(autouse=True)
def short_timeout(ext: Any) -> None:
    ext.update_settings(timeout_s=1)


@pytest.mark.parametrize("name", list(FAULTS))
def test_fault_raises_and_logs_the_letter_for_resending(name, mail, ext, make_smtp_server, certs):
    fault = FAULTS[name]
    with faulty(name, make_smtp_server, certs) as fields:
        account_id = add(ext, fields)
        sent = letter()
        with pytest.raises(DeliveryError) as raised:
            mail.send(sent)

    err = raised.value
    assert isinstance(err, smtplib.SMTPException)
    assert (err.stage, err.code, err.command, err.account_id) == (
        fault.stage,
        fault.code,
        fault.command,
        account_id,
    )
    assert re.search(fault.reason, str(err)), str(err)

    row = ext.get_message(err.record_id)
    assert (row.status, row.account_id, row.error_stage, row.error_code) == (
        "failed",
        account_id,
        fault.stage,
        fault.code,
    )
    assert row.error.startswith(str(err)) and row.pending == RECIPIENTS and row.resendable
    assert row.message_id == sent.msgId and sent.msgId.encode() in row.body
    assert (account_id in ext.account_health()) is fault.cools_down


@pytest.mark.parametrize("name", list(FAULTS))
def test_fault_with_a_backup_delivers_once_through_it(name, mail, ext, make_smtp_server, certs):
    fault = FAULTS[name]
    # The deadline is one setting for every account: the healthy backup must answer each reply within
    # it too, which on a loaded machine can take over a second. Only "never greets" waits it out.
    ext.update_settings(timeout_s=5)
    backup_server = make_smtp_server()
    backup_id = add(
        ext,
        {"host": backup_server.host, "port": backup_server.port, "security": "none", "auth": "none"},
        sender_email="relay@example.net",
    )
    with faulty(name, make_smtp_server, certs) as fields:
        primary_id = add(ext, fields, backup_ids=[backup_id])
        sent = letter()
        mail.send(sent)

    [got] = backup_server.wait_for(1)
    assert got.message["Message-ID"] == sent.msgId
    assert got.message["From"] == "Shop <relay@example.net>"
    assert got.message["Reply-To"] == "Shop <shop@example.com>"
    assert got.rcpt_tos == RECIPIENTS
    [row] = ext.messages().items
    assert (row.status, row.account_id, row.chosen_account_id) == ("sent", backup_id, primary_id)
    assert row.error is None and row.body is None
    failed, delivered = row.history
    assert (failed["account_id"], failed["stage"], failed["code"]) == (primary_id, fault.stage, fault.code)
    assert delivered == {**delivered, "account_id": backup_id, "result": "sent"}
    # The server records a letter before it answers 250, and mail.send waits for that answer:
    # a second delivery would already be here.
    assert backup_server.received == [got]


def test_550_for_one_recipient_of_three_delivers_to_the_others(mail, ext, make_smtp_server):
    server = make_smtp_server(
        handler_hooks=Refuse("RCPT", "550 5.1.1 No such user", addresses={"nobody@example.org"})
    )
    backup_server = make_smtp_server()
    backup_id = add(
        ext, {"host": backup_server.host, "port": backup_server.port, "security": "none", "auth": "none"}
    )
    add(
        ext,
        {"host": server.host, "port": server.port, "security": "none", "auth": "none"},
        backup_ids=[backup_id],
    )

    mail.send(letter(recipients=["ann@example.org", "nobody@example.org", "bob@example.org"]))

    [got] = server.wait_for(1)
    assert sorted(got.rcpt_tos) == ["ann@example.org", "bob@example.org"]
    assert backup_server.received == []
    [row] = ext.messages().items
    assert row.status == "sent" and row.pending == []
    assert row.refused == {"nobody@example.org": (550, "5.1.1 No such user")}
    assert sorted(row.delivered_to) == ["ann@example.org", "bob@example.org"]


def test_idle_connection_closed_between_letters_of_a_bulk_loop(mail, ext, make_smtp_server):
    backup_server = make_smtp_server()
    backup_id = add(
        ext, {"host": backup_server.host, "port": backup_server.port, "security": "none", "auth": "none"}
    )
    with ScriptedServer(close_after_letter=True) as server:
        add(
            ext,
            {"host": server.host, "port": server.port, "security": "none", "auth": "none"},
            backup_ids=[backup_id],
        )
        with mail.connect() as conn:
            sent = [letter(f"News {n}") for n in range(5)]
            for message in sent:
                conn.send(message)
        got = server.wait_for(5)
        assert server.connections == 5

    assert sorted(g.message_id for g in got) == sorted(m.msgId for m in sent)
    assert backup_server.received == []
    rows = ext.messages().items
    assert [r.status for r in rows] == ["sent"] * 5 and all(r.history == [] for r in rows)


def test_connection_lost_after_the_data_is_not_sent_again(mail, ext):
    with ScriptedServer(drop_after_letter=2) as server:
        account_id = add(ext, {"host": server.host, "port": server.port, "security": "none", "auth": "none"})
        sent = [letter(f"News {n}") for n in range(3)]
        with pytest.raises(DeliveryError) as raised, mail.connect() as conn:
            for message in sent:
                conn.send(message)
        got = server.received
        assert server.connections == 1

    # The second letter reached the server but no answer came back: not retried, so never twice.
    assert [g.message_id for g in got] == [sent[0].msgId, sent[1].msgId]
    assert (raised.value.stage, raised.value.command, raised.value.account_id) == ("send", "DATA", account_id)
    failed = ext.get_message(raised.value.record_id)
    assert failed.status == "failed" and failed.message_id == got[1].message_id
    assert [r.status for r in ext.messages().items] == ["failed", "sent"]
