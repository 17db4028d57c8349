"""PIPELINING (RFC 2920): MAIL, RCPT and DATA in one write, each reply handled as without it.

Every case runs twice against a server that offers PIPELINING: with the
account's ``pipelining`` flag on and off. What the caller, the message log
and the receiving server see must be the same both ways; only the order of
the lines in the SMTP log (every command, then every reply) and the packets
on the wire differ.
"""

from __future__ import annotations

import re
import typing as t

import pytest
from flask_mail import Message
from misbehaving import PacketServer, Refuse, ScriptedServer

from flask_smtp_accounts import DeliveryError
from flask_smtp_accounts.testing import LOGIN, PASSWORD

ON_OFF = pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining on", "pipelining off"])
RECIPIENTS = ["ann@example.org", "bob@example.org", "cid@example.org"]


def letter(subject: str = "Order 1", recipients: list[str | tuple[str, str]] | None = None) -> Message:
    return Message(
        subject, sender="Shop <shop@example.com>", recipients=recipients or list(RECIPIENTS), body="Thanks."
    )


def add(ext: t.Any, server: t.Any, pipelining: bool, **fields: t.Any) -> int:
    values = {
        "sender_email": "shop@example.com",
        "host": server.host,
        "port": server.port,
        "security": "none",
        "auth": "none",
        "pipelining": pipelining,
        **fields,
    }
    password = values.pop("password", None)
    return int(ext.add_account(password=password, check=False, **values).id)


def send_log(ext: t.Any, account_id: int) -> list[str]:
    """The lines of the account's send log."""
    return ext.read_log(account_id, "send", length=1 << 20).text.splitlines()


def commands_then_replies(log: list[str]) -> bool:
    """Whether MAIL, RCPT and DATA went out before the server's first reply to them."""
    start = next(i for i, line in enumerate(log) if line.startswith("C: mail FROM:"))
    data = next(i for i, line in enumerate(log) if line == "C: data")
    return not any(line.startswith("S: ") for line in log[start:data])


#: The deadline for servers that answer: far above any reply's time, so that only a silent server meets it.
HEALTHY_TIMEOUT_S = 10


@pytest.fixture(autouse=True)
def deadline_and_logs(request: pytest.FixtureRequest) -> None:
    """The servers' replies in the logs; the admin site is a site of its own.

    The deadline is generous: healthy servers answer within it even on a
    loaded machine. The test of a silent server sets a short one.
    """
    if "admin_site" not in request.fixturenames:
        request.getfixturevalue("ext").update_settings(timeout_s=HEALTHY_TIMEOUT_S, log_level=2)


@ON_OFF
def test_letters_arrive_one_after_another_on_one_connection(pipelining, mail, ext, make_smtp_server):
    server = make_smtp_server(pipelining=True)
    account_id = add(ext, server, pipelining)
    with mail.connect() as conn:
        conn.send(letter("Order 1"))
        conn.send(letter("Order 2", ["dan@example.org"]))

    got = server.wait_for(2)
    assert [(r.message["Subject"], sorted(r.rcpt_tos)) for r in got] == [
        ("Order 1", RECIPIENTS),
        ("Order 2", ["dan@example.org"]),
    ]
    log = send_log(ext, account_id)
    assert "S: 250-PIPELINING" in log
    assert commands_then_replies(log) is pipelining
    assert sorted(line for line in log if line.startswith("C: rcpt")) == [
        f"C: rcpt TO:<{address}>" for address in [*RECIPIENTS, "dan@example.org"]
    ]


@ON_OFF
def test_a_refused_recipient_leaves_the_others_their_letter(pipelining, mail, ext, make_smtp_server):
    refuse = Refuse("RCPT", "550 5.1.1 No such user", addresses={"bob@example.org"})
    server = make_smtp_server(pipelining=True, handler_hooks=refuse)
    add(ext, server, pipelining)
    with mail.connect() as conn:
        conn.send(letter("Order 1"))
        conn.send(letter("Order 2", ["dan@example.org"]))

    got = server.wait_for(2)
    assert [sorted(r.rcpt_tos) for r in got] == [["ann@example.org", "cid@example.org"], ["dan@example.org"]]
    [first] = ext.messages(subject="Order 1").items
    assert first.status == "sent"
    assert first.refused == {"bob@example.org": (550, "5.1.1 No such user")}


def refusal_then_next_letter(
    mail: t.Any, ext: t.Any, server: t.Any, pipelining: bool, **fields: t.Any
) -> tuple[DeliveryError, int]:
    """Send a letter that fails, then another on the same connection; the error and the account id."""
    account_id = add(ext, server, pipelining, **fields)
    with mail.connect() as conn:
        with pytest.raises(DeliveryError) as raised:
            conn.send(letter("Order 1"))
        conn.send(letter("Order 2", ["dan@example.org"]))
    return raised.value, account_id


@ON_OFF
@pytest.mark.parametrize(
    ("command", "reply", "reason"),
    [
        ("MAIL", "451 4.3.0 Busy", "refused the sender"),
        ("MAIL", "553 5.7.1 Sender not allowed", "refused the sender"),
        ("RCPT", "451 4.2.0 Later", "every recipient was refused"),
        ("DATA", "554 5.6.0 Rejected", "refused the letter's data"),
    ],
)
def test_a_refusal_fails_the_letter_and_the_next_one_on_the_connection_arrives(
    pipelining, command, reply, reason, mail, ext, make_smtp_server
):
    refuse = Refuse(command, reply, times=1 if command != "RCPT" else len(RECIPIENTS))
    server = make_smtp_server(pipelining=True, handler_hooks=refuse)
    err, account_id = refusal_then_next_letter(mail, ext, server, pipelining)

    code = int(reply[:3])
    assert (err.stage, err.command, err.code, err.account_id) == ("send", command, code, account_id)
    assert reason in str(err) and reply[4:] in str(err)
    assert [(r.message["Subject"], r.rcpt_tos) for r in server.wait_for(1)] == [
        ("Order 2", ["dan@example.org"])
    ]
    row = ext.get_message(err.record_id)
    assert (row.status, row.error_code) == ("failed", code)
    assert commands_then_replies(send_log(ext, account_id)) is pipelining


@ON_OFF
def test_every_recipient_refused_and_data_accepted_anyway_gets_a_lone_dot(pipelining, mail, ext):
    """RFC 2920, 3.1: the client checks DATA's reply too; after a 354 with no recipient, a lone dot."""
    with ScriptedServer(pipelining=True, rcpt_reply="550 5.1.1 No such user") as server:
        account_id = add(ext, server, pipelining)
        with mail.connect() as conn:
            for subject in ("Order 1", "Order 2"):
                with pytest.raises(DeliveryError) as raised:
                    conn.send(letter(subject))
        got = server.received
    err = raised.value

    assert (err.command, err.code) == ("RCPT", 550)
    assert err.refused == {address: (550, "5.1.1 No such user") for address in RECIPIENTS}
    # With pipelining DATA already went out with the recipients: the server answered 354, so the client
    # ended an empty letter at once. Step by step, DATA was never sent. The next letter met the same refusal.
    empty = [(g.mail_from, g.rcpt_tos, g.data) for g in got]
    assert empty == ([("shop@example.com", [], b"")] * 2 if pipelining else [])
    log = send_log(ext, account_id)
    if pipelining:
        assert log.count("C: .") == 2
        assert log.count("S: 554 5.5.1 Error: no valid recipients") == 2
    else:
        assert "C: data" not in log


@ON_OFF
@pytest.mark.parametrize("command", ["MAIL", "RCPT", "DATA"])
def test_a_server_hanging_up_fails_the_letter_at_the_command_it_hung_up_on(pipelining, command, mail, ext):
    with ScriptedServer(pipelining=True, hang_up_at=command) as server:
        account_id = add(ext, server, pipelining)
        with pytest.raises(DeliveryError) as raised:
            mail.send(letter())

    err = raised.value
    assert (err.stage, err.command, err.account_id) == ("send", command, account_id)
    assert "closed the connection" in str(err)
    assert ext.get_message(err.record_id).status == "failed"


@ON_OFF
def test_a_server_hanging_up_in_the_data_fails_the_letter_at_data(pipelining, mail, ext):
    with ScriptedServer(pipelining=True, data="drop-in-data") as server:
        add(ext, server, pipelining)
        with pytest.raises(DeliveryError) as raised:
            mail.send(letter())

    assert (raised.value.command, raised.value.code) == ("DATA", None)
    assert re.search("closed the connection", str(raised.value))


@ON_OFF
@pytest.mark.parametrize("command", ["RCPT", "DATA"])
def test_a_server_that_stops_answering_fails_the_letter_by_the_timeout(pipelining, command, mail, ext):
    ext.update_settings(timeout_s=1)
    with ScriptedServer(pipelining=True, silent_at=command) as server:
        add(ext, server, pipelining)
        with pytest.raises(DeliveryError) as raised:
            mail.send(letter())

    assert (raised.value.command, raised.value.code) == (command, None)
    assert "timeout" in str(raised.value)


@ON_OFF
def test_the_log_shows_every_command_and_no_secret(pipelining, mail, ext, make_smtp_server):
    server = make_smtp_server(pipelining=True, auth=(LOGIN, PASSWORD))
    account_id = add(ext, server, pipelining, auth="login", login=LOGIN, password=PASSWORD)
    mail.send(letter())

    assert [r.login for r in server.wait_for(1)] == [LOGIN]
    log = send_log(ext, account_id)
    text = "\n".join(log)
    assert PASSWORD not in text and "czNjcmV0" not in text
    sent = [line.split(" ", 2)[1] for line in log if line.startswith("C: ")]
    assert sent[sent.index("mail") :] == ["mail", *["rcpt"] * len(RECIPIENTS), "data", "[letter", "quit"]
    assert commands_then_replies(log) is pipelining


@ON_OFF
def test_mail_rcpt_and_data_arrive_in_one_packet_only_with_pipelining(pipelining, mail, ext):
    with PacketServer() as server:
        add(ext, server, pipelining)
        mail.send(letter(recipients=RECIPIENTS[:2]))
        chunks = server.chunks

    mail_from = b"mail FROM:<shop@example.com>\r\n"
    recipients = [b"rcpt TO:<ann@example.org>\r\n", b"rcpt TO:<bob@example.org>\r\n"]
    if pipelining:
        [packet] = [chunk for chunk in chunks if chunk.startswith(b"mail")]
        assert packet in (
            mail_from + b"".join(order) + b"data\r\n" for order in (recipients, recipients[::-1])
        )
    else:
        assert [chunk for chunk in chunks if chunk in (mail_from, *recipients, b"data\r\n")] in (
            [mail_from, *order, b"data\r\n"] for order in (recipients, recipients[::-1])
        )


def test_a_server_without_pipelining_gets_one_command_at_a_time(mail, ext, make_smtp_server):
    server = make_smtp_server()
    account_id = add(ext, server, True)
    mail.send(letter())

    assert sorted(server.wait_for(1)[0].rcpt_tos) == RECIPIENTS
    assert not commands_then_replies(send_log(ext, account_id))


def test_the_flag_is_on_by_default_and_saved_off(ext, make_smtp_server):
    server = make_smtp_server()
    default = ext.add_account(
        check=False, sender_email="a@example.com", host=server.host, port=server.port, auth="none"
    )
    assert default.pipelining is True
    assert ext.account_info({"sender_email": "a@example.com", "host": "h", "auth": "none"}).pipelining is True
    ext.update_account(default.id, pipelining=False, check=False)
    assert ext.get_account(default.id).pipelining is False


def test_the_command_line_turns_it_off_and_on(app, ext, make_smtp_server):
    server = make_smtp_server()
    where = ["--host", server.host, "--port", str(server.port), "--security", "none", "--auth", "none"]

    def run(*args: str) -> None:
        result = app.test_cli_runner().invoke(args=["smtp-accounts", *args])
        assert result.exit_code == 0, result.output

    run("add", "--sender-email", "shop@example.com", *where, "--no-pipelining", "--no-check")
    assert ext.get_account(1).pipelining is False
    run("edit", "1", "--pipelining", "--no-check")
    assert ext.get_account(1).pipelining is True


@pytest.mark.parametrize("ticked", [True, False])
def test_the_admin_form_saves_the_checkbox(ticked, admin_site, make_smtp_server):
    from test_admin import ADMIN, account_form, accounts, get, post_form

    server = make_smtp_server()
    client = admin_site.app.test_client()
    client.get("/test-login/admin")
    assert "Pipeline commands" in get(client, f"{ADMIN}/accounts/new/")
    form = account_form(server, pipelining="y" if ticked else None)
    response = post_form(client, f"{ADMIN}/accounts/new/", form, follow_redirects=True)

    assert response.status_code == 200
    assert [a.pipelining for a in accounts(admin_site)] == [ticked]
