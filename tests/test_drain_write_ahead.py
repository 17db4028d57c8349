"""A drained letter's row is ``sending`` and committed before its first byte, whatever the drainer batches.

The server itself reads the message log (a connection of its own, so only
committed rows) when each letter's data arrives.
"""

from __future__ import annotations

import email

from apps import stored_rows
from flask_mail import Message


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
