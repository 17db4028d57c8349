"""An ``outbox()`` block stores its letters in batches: a row the database refuses costs that letter only.

On databases with row locks a block's rows share a transaction (a savepoint
each), committed every batch and when the block ends; SQLite commits each.
"""

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


def test_the_letters_of_a_block_longer_than_a_batch_are_all_stored_once(
    app, mail, ext, add_account, make_smtp_server
):
    add_account(make_smtp_server(), sender_email="shop@example.com")
    count = app.extensions["smtp_accounts"].message_log.store_batch * 2 + 3
    with ext.outbox(), mail.connect() as conn:
        for n in range(count):
            conn.send(letter(f"Letter {n}"))

    stored = stored_rows(app, "SELECT subject, status FROM smtp_accounts_message ORDER BY id")
    assert [row["subject"] for row in stored] == [f"Letter {n}" for n in range(count)]
    assert {row["status"] for row in stored} == {"queued"}
