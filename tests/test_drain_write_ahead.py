"""A drained letter's row is ``sending`` and committed before its first byte, whatever the drainer batches.

The server itself reads the message log (a connection of its own, so only
committed rows) when each letter's data arrives.
"""

from __future__ import annotations

import email
import threading

import sqlalchemy as sa
from apps import stored_rows
from flask_mail import Message

from flask_smtp_accounts.testing.sockets import HangingServer


class ReadsTheLog:
    """Hooks for ``SMTPServer(handler_hooks=...)``: the status of each letter's row as its data arrives."""

    def __init__(self, app) -> None:
        self.app = app
        self.seen: dict[str, str] = {}

    async def handle_DATA(self, server, session, envelope) -> None:  # noqa: N802 - aiosmtpd's name
        message_id = email.message_from_bytes(envelope.original_content)["Message-ID"].strip("<> ")
        statuses = {
            row["message_id"].strip("<> "): row["status"]
            for row in stored_rows(self.app, "SELECT message_id, status FROM smtp_accounts_message")
        }
        self.seen[message_id] = statuses.get(message_id, "no row")


def test_every_drained_letter_is_sending_and_committed_when_its_data_arrives(
    app, mail, ext, add_account, make_smtp_server
):
    log = ReadsTheLog(app)
    server = make_smtp_server(handler_hooks=log)
    add_account(server, sender_email="shop@example.com")
    sent = []
    with ext.outbox(), mail.connect() as conn:
        for n in range(30):
            message = Message(
                f"Letter {n}", sender="shop@example.com", recipients=["bob@example.org"], body="Hi."
            )
            conn.send(message)
            sent.append(message.msgId.strip("<> "))

    report = ext.deliver_queued(connections=3)

    assert (report.sent, report.failed, report.left) == (30, 0, 0)
    assert log.seen == dict.fromkeys(sent, "sending")


class CountsEnvelopes:
    """Hooks for ``SMTPServer(handler_hooks=...)``: each MAIL FROM counted as it arrives."""

    def __init__(self) -> None:
        self.mails = 0
        self.arrived = threading.Condition()

    async def handle_MAIL(self, server, session, envelope, address, mail_options) -> None:  # noqa: N802
        with self.arrived:
            self.mails += 1
            self.arrived.notify_all()

    def wait_for(self, count: int) -> bool:
        with self.arrived:
            return self.arrived.wait_for(lambda: self.mails >= count, timeout=ENVELOPE_DEADLINE_S)


#: How long the write-ahead waits for its letter's envelope to reach the server; only a failing run waits it out.
ENVELOPE_DEADLINE_S = 10


def test_a_drained_letter_moves_to_sending_while_its_envelope_travels(
    app, db, mail, ext, add_account, make_smtp_server
):
    """The write-ahead (with the update of the letter before) is the drainer's work for the envelope's round trip.

    Each statement moving a letter to ``sending`` waits until the server
    has received that letter's MAIL FROM: a drainer that committed before
    writing the envelope would wait in vain. The first letter is the
    exception: it moves before its connection opens, so that no handshake
    delays the row work. The content still arrives after the commit (the
    test above).
    """
    envelopes = CountsEnvelopes()
    log = ReadsTheLog(app)

    class Hooks:
        handle_MAIL = envelopes.handle_MAIL
        handle_DATA = log.handle_DATA

    server = make_smtp_server(handler_hooks=Hooks(), pipelining=True)
    add_account(server, sender_email="shop@example.com")
    with ext.outbox(), mail.connect() as conn:
        for n in range(4):
            conn.send(Message(f"Letter {n}", sender="shop@example.com", recipients=["bob@example.org"]))
    ids = [row["id"] for row in stored_rows(app, "SELECT id FROM smtp_accounts_message ORDER BY id")]
    waited: list[tuple[int, bool]] = []

    def before_execute(conn, cursor, statement, parameters, context, executemany) -> None:
        bound = context.compiled_parameters[0] if context.compiled_parameters else {}
        if "lease_end" in bound:  # claimed -> sending
            position = ids.index(bound["record_id"])
            if position == 0:  # the first, before its connection opens: no envelope has left yet
                waited.append((position, envelopes.mails == 0))
            else:
                waited.append((position, envelopes.wait_for(position + 1)))

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", before_execute)
    try:
        report = ext.deliver_queued(connections=1)
    finally:
        sa.event.remove(engine, "before_cursor_execute", before_execute)

    assert (report.sent, report.failed) == (4, 0)
    assert waited == [(0, True), (1, True), (2, True), (3, True)]
    assert set(log.seen.values()) == {"sending"}
    statuses = stored_rows(app, "SELECT status FROM smtp_accounts_message")
    assert [row["status"] for row in statuses] == ["sent"] * 4


def test_a_letters_update_waits_for_no_connection_the_next_letter_opens(
    app, mail, ext, add_account, make_smtp_server
):
    """A retry run's next letter may need a new connection (another account, a server that hangs):
    the row of the letter before is settled before that connection is even asked for."""
    ext.update_settings(timeout_s=2)
    add_account(make_smtp_server(pipelining=True), sender_email="shop@example.com")
    with ext.outbox(), mail.connect() as conn:
        conn.send(Message("First", sender="shop@example.com", recipients=["bob@example.org"], body="Hi."))
        conn.send(Message("Second", sender="news@example.com", recipients=["bob@example.org"], body="Hi."))
    first, _ = [row["id"] for row in stored_rows(app, "SELECT id FROM smtp_accounts_message ORDER BY id")]
    seen: list[str] = []

    class Hanging(HangingServer):
        def _accepted(self, conn) -> None:
            super()._accepted(conn)
            [row] = stored_rows(app, f"SELECT status FROM smtp_accounts_message WHERE id = {first}")
            seen.append(row["status"])

    with Hanging() as hanging:
        ext.add_account(
            check=False,
            sender_email="news@example.com",
            host=hanging.host,
            port=hanging.port,
            security="none",
            auth="none",
        )
        report = ext.retry_queue()

    assert (report.sent, report.requeued) == (1, 1)
    assert seen == ["sent"]
