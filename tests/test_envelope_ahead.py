"""The drain's next envelope ahead: a letter's data and the next letter's MAIL, RCPT and DATA in one write.

RFC 2920, section 3.1 lets the data start a group of pipelined commands, so
a drainer sending the letters of a claim on one connection writes each
letter's data together with the next letter's envelope: one round trip a
letter instead of two. The next letter stays ``claimed`` until its turn and
its content leaves only then. What the servers receive must be what they
receive without it: each letter once, whole; a refusal changes nothing for
the letter after it; a letter whose envelope went ahead but that is not sent
there (its account reached a limit) costs that connection, and nothing else.
"""

from __future__ import annotations

import pytest
from flask_mail import Message
from misbehaving import PacketServer, Refuse

#: The deadline for servers that answer: only a run that writes where it must not waits it out.
HEALTHY_TIMEOUT_S = 10


@pytest.fixture(autouse=True)
def deadline_and_logs(ext) -> None:
    ext.update_settings(timeout_s=HEALTHY_TIMEOUT_S, log_level=2)


def queue(
    ext, mail, count: int, recipients: dict[int, list[str | tuple[str, str]]] | None = None
) -> list[Message]:
    """``count`` letters stored in the outbox, in order; ``recipients``: other recipients for letter N."""
    recipients = recipients or {}
    letters = [
        Message(
            f"Letter {n}",
            sender="shop@example.com",
            recipients=recipients.get(n, ["bob@example.org"]),
            body=f"Body {n}.",
        )
        for n in range(1, count + 1)
    ]
    with ext.outbox(), mail.connect() as conn:
        for message in letters:
            conn.send(message)
    return letters


def statuses(ext) -> dict[str, str]:
    return {row.subject: row.status for row in ext.messages().items}


def send_log(ext, account_id: int) -> list[str]:
    return ext.read_log(account_id, "send", length=1 << 20).text.splitlines()


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining on", "pipelining off"])
def test_each_drained_letters_envelope_arrives_in_the_packet_of_the_letter_before(pipelining, mail, ext):
    with PacketServer() as server:
        account = ext.add_account(
            check=False,
            sender_email="shop@example.com",
            host=server.host,
            port=server.port,
            security="none",
            auth="none",
            pipelining=pipelining,
        )
        queue(ext, mail, 3)
        report = ext.deliver_queued(connections=1)
        chunks = server.chunks

    assert (report.sent, report.left) == (3, 0)
    ahead = [chunk for chunk in chunks if b"\r\n.\r\nmail FROM:<shop@example.com>\r\n" in chunk]
    if pipelining:
        # Letters 2 and 3: MAIL, RCPT and DATA came with the end of the letter before.
        assert [
            chunk.endswith(b"\r\n.\r\nmail FROM:<shop@example.com>\r\nrcpt TO:<bob@example.org>\r\ndata\r\n")
            for chunk in ahead
        ] == [True, True]
    else:
        assert ahead == []
    assert statuses(ext) == {"Letter 1": "sent", "Letter 2": "sent", "Letter 3": "sent"}
    log = send_log(ext, account.id)
    assert sum(line == "C: mail FROM:<shop@example.com>" for line in log) == 3


def test_a_refused_letter_leaves_the_next_one_whole_on_the_same_connection(
    mail, ext, add_account, make_smtp_server
):
    """The end of data ends a transaction, refused or not: no RSET then, which would be the next letter's data."""
    server = make_smtp_server(pipelining=True, handler_hooks=Refuse("DATA", "554 5.6.0 Rejected", times=1))
    account = add_account(server, sender_email="shop@example.com")
    letters = queue(ext, mail, 3)
    report = ext.deliver_queued(connections=1)

    assert (report.sent, report.failed) == (2, 1)
    received = {r.message["Subject"]: r for r in server.wait_for(2)}
    assert sorted(received) == ["Letter 2", "Letter 3"]
    for message in letters[1:]:
        got = received[message.subject]
        assert got.message_id == message.msgId
        assert got.message.get_payload().strip() == message.body
    assert statuses(ext) == {"Letter 1": "failed", "Letter 2": "sent", "Letter 3": "sent"}
    log = send_log(ext, account.id)
    assert sum(line.startswith("C: ehlo") for line in log) == 1  # the refusal cost no connection
    assert "C: rset" not in log


def test_a_letter_whose_envelope_went_ahead_but_met_its_limit_sends_nothing_and_waits(
    mail, ext, add_account, make_smtp_server
):
    """Letter 3's envelope went with letter 2's data; at its turn the account's limit stops it.

    Its DATA may have opened the data, so that connection is closed without
    another word (no QUIT, no RSET: either would be its data); nothing of it
    arrives, and it waits in the queue with letter 4.
    """
    server = make_smtp_server(pipelining=True)
    account = add_account(server, sender_email="shop@example.com", limit_per_minute=2)
    letters = queue(ext, mail, 4)
    report = ext.deliver_queued(connections=1)

    assert (report.sent, report.requeued) == (2, 2)
    received = server.wait_for(2)
    assert [r.message_id for r in received] == [m.msgId for m in letters[:2]]
    assert [r.message.get_payload().strip() for r in received] == ["Body 1.", "Body 2."]
    assert statuses(ext) == {
        "Letter 1": "sent",
        "Letter 2": "sent",
        "Letter 3": "queued",
        "Letter 4": "queued",
    }
    assert "C: quit" not in send_log(ext, account.id)


def test_a_letter_after_one_whose_envelope_went_ahead_in_vain_goes_whole_on_a_new_connection(
    mail, ext, add_account, make_smtp_server
):
    """Letter 3 (two recipients) would pass the day's recipient limit; letter 4 (one) still fits.

    Letter 4 meets a connection where letter 3's envelope waits: that
    connection is closed and letter 4 goes on a new one, to its own
    recipient, under its own envelope.
    """
    server = make_smtp_server(pipelining=True)
    account = add_account(server, sender_email="shop@example.com", recipient_limit_per_day=3)
    letters = queue(ext, mail, 4, {3: ["cid@example.org", "dan@example.org"], 4: ["eve@example.org"]})
    report = ext.deliver_queued(connections=1)

    assert (report.sent, report.requeued) == (3, 1)
    received = server.wait_for(3)
    assert [(r.message_id, r.rcpt_tos, r.message.get_payload().strip()) for r in received] == [
        (letters[0].msgId, ["bob@example.org"], "Body 1."),
        (letters[1].msgId, ["bob@example.org"], "Body 2."),
        (letters[3].msgId, ["eve@example.org"], "Body 4."),
    ]
    assert statuses(ext) == {"Letter 1": "sent", "Letter 2": "sent", "Letter 3": "queued", "Letter 4": "sent"}
    assert sum(line.startswith("C: ehlo") for line in send_log(ext, account.id)) == 2


class ClosingAtMail:
    """aiosmtpd hooks: the ``at``-th MAIL FROM (over all connections) is answered 421, the server closing."""

    def __init__(self, at: int) -> None:
        self.at, self.seen = at, 0

    async def handle_MAIL(self, server, session, envelope, address, options) -> str | None:
        self.seen += 1
        return "421 4.3.2 Closing the connection" if self.seen == self.at else None


def test_a_server_closing_at_an_envelope_written_ahead_gets_that_letter_again_on_a_new_connection(
    mail, ext, add_account, make_smtp_server
):
    """Letter 2's envelope went with letter 1's data and met a 421: nothing of it reached the server."""
    server = make_smtp_server(pipelining=True, handler_hooks=ClosingAtMail(2))
    account = add_account(server, sender_email="shop@example.com")
    letters = queue(ext, mail, 3)
    report = ext.deliver_queued(connections=1)

    assert (report.sent, report.failed, report.requeued) == (3, 0, 0)
    received = server.wait_for(3)
    assert [(r.message_id, r.message.get_payload().strip()) for r in received] == [
        (m.msgId, m.body) for m in letters
    ]
    assert statuses(ext) == {"Letter 1": "sent", "Letter 2": "sent", "Letter 3": "sent"}
    log = send_log(ext, account.id)
    assert "S: 421 4.3.2 Closing the connection" in log
    assert sum(line.startswith("C: ehlo") for line in log) == 2
