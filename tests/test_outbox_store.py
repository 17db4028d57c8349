"""An ``outbox()`` block stores each letter committed before ``mail.send`` returns; a refused row costs that letter only."""

from __future__ import annotations

import pytest
from apps import stored_rows
from flask_mail import Message

from flask_smtp_accounts import MessageLogError


def letter(subject: str) -> Message:
    return Message(subject, sender="shop@example.com", recipients=["bob@example.org"], body="Hello.")


def test_a_row_the_database_refuses_inside_an_outbox_block_leaves_the_others_of_the_block_stored(
    app, mail, ext, db, add_account, make_smtp_server
):
    if db.engine.dialect.name == "sqlite":
        pytest.skip("SQLite stores a Message-ID of any length")
    add_account(make_smtp_server(), sender_email="shop@example.com")
    refused = letter("Refused")
    refused.msgId = "<" + "x" * 1200 + "@example.com>"  # longer than the column holds

    with ext.outbox(), mail.connect() as conn:
        conn.send(letter("First"))
        with pytest.raises(MessageLogError):
            conn.send(refused)
        conn.send(letter("Last"))

    stored = stored_rows(app, "SELECT subject, status FROM smtp_accounts_message ORDER BY id")
    assert [(row["subject"], row["status"]) for row in stored] == [("First", "queued"), ("Last", "queued")]


def test_each_letter_of_an_outbox_block_is_committed_before_its_send_returns(
    app, mail, ext, add_account, make_smtp_server
):
    """A process killed inside the block loses no letter it was told was stored: another connection sees each."""
    add_account(make_smtp_server(), sender_email="shop@example.com")
    seen = []
    with ext.outbox(), mail.connect() as conn:
        for n in range(3):
            conn.send(letter(f"Letter {n}"))
            seen.append(
                [row["subject"] for row in stored_rows(app, "SELECT subject FROM smtp_accounts_message")]
            )

    assert seen == [["Letter 0"], ["Letter 0", "Letter 1"], ["Letter 0", "Letter 1", "Letter 2"]]
