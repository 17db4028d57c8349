"""The message log for operators (issue 14, item 5): search, streamed export, and copies of logged letters."""

from __future__ import annotations

import csv
import io
import json

import pytest
import sqlalchemy as sa
from flask_mail import Message

from flask_smtp_accounts import ResendError
from flask_smtp_accounts.errors import InvalidAccountError


def send(mail, subject, to="ann@example.org", sender="shop@example.com", message_id=None):
    message = Message(subject, sender=sender, recipients=[to], body="Thanks.")
    if message_id:
        message.msgId = message_id
    mail.send(message)
    return message


def test_search_by_subject_address_and_message_id(mail, ext, add_account, make_smtp_server):
    add_account(make_smtp_server(), sender_email="shop@example.com")
    send(mail, "Order 17 shipped", to="ann@example.org")
    send(mail, "Password reset", to="bob@example.org")
    send(mail, "Receipt", to="cy@example.org", message_id="<r-42@shop.example.com>")

    def subjects(**filters):
        return [m.subject for m in ext.messages(**filters).items]

    assert subjects(subject="order 17") == ["Order 17 shipped"]
    assert subjects(address="BOB@") == ["Password reset"]
    assert subjects(message_id="<r-42@shop.example.com>") == ["Receipt"] == subjects(message_id="r-42@shop")
    assert subjects(search="receipt") == ["Receipt"] == subjects(search="<r-42@shop.example.com>")
    assert subjects(search="cy@example") == ["Receipt"]
    assert subjects(search="100%_") == []


def test_an_export_reads_the_rows_in_chunks_and_says_them_all(
    app, ext, db, mail, add_account, make_smtp_server
):
    add_account(make_smtp_server(), sender_email="shop@example.com")
    app.extensions[
        "mail"
    ].suppress = True  # logged as suppressed, without a server: quicker to make 1,201 rows
    with mail.connect() as conn:
        for number in range(1, 1201):
            conn.send(
                Message(
                    f"Letter {number}", sender="shop@example.com", recipients=["ann@example.org"], body="x"
                )
            )
        conn.send(
            Message(
                '=HYPERLINK("http://evil")', sender="shop@example.com", recipients=["b@example.org"], body="x"
            )
        )
    selects = []

    def count(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("SELECT") and "smtp_accounts_message" in statement:
            selects.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        pieces = ext.export_messages("csv", address="example.org")
        assert selects == [], "nothing is read before the export is consumed"
        text = "".join(pieces)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)

    assert len(selects) == 3, "1,201 rows in chunks of 500"
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 1201
    assert rows[0]["subject"] == '\'=HYPERLINK("http://evil")', "a formula is not run by a spreadsheet"
    assert rows[1]["subject"] == "Letter 1200" and rows[-1]["subject"] == "Letter 1"
    assert rows[-1]["status"] == "suppressed" and rows[-1]["recipients"] == "ann@example.org"
    assert "body" not in rows[0]

    exported = json.loads("".join(ext.export_messages("json", subject="Letter 12")))
    expected = [f"Letter {n}" for n in range(1200, 0, -1) if str(n).startswith("12")]
    assert [r["subject"] for r in exported] == expected
    assert exported[0]["recipients"] == ["ann@example.org"]


def test_a_delivered_letter_is_sent_again_as_a_new_entry_to_another_address(
    mail, ext, add_account, make_smtp_server
):
    server = make_smtp_server()
    add_account(server, sender_email="shop@example.com")
    ext.update_settings(keep_bodies=True)
    send(mail, "Receipt 9", to="ann@example.org")
    [original] = ext.messages().items

    copy = ext.resend_copy(original.id, ["accounts@example.net"])

    first, second = server.wait_for(2)
    assert second.rcpt_tos == ["accounts@example.net"] and second.message["Subject"] == "Receipt 9"
    assert second.message["Message-ID"] != first.message["Message-ID"]
    assert (copy.status, copy.resend_of, copy.recipients) == ("sent", original.id, ["accounts@example.net"])
    assert copy.message_id == second.message["Message-ID"]
    assert [m.id for m in ext.messages().items] == [copy.id, original.id]
    assert ext.get_message(original.id).status == "sent", "the original row is left as it was"

    again = ext.resend_copy(original.id)
    assert server.wait_for(3)[2].rcpt_tos == ["ann@example.org"] and again.resend_of == original.id

    with pytest.raises(InvalidAccountError):
        ext.resend_copy(original.id, ["not an address"])


def test_without_the_body_a_delivered_letter_cannot_be_sent_again(mail, ext, add_account, make_smtp_server):
    add_account(make_smtp_server(), sender_email="shop@example.com")
    send(mail, "Receipt 10")
    [original] = ext.messages().items
    with pytest.raises(ResendError, match="its body was not kept"):
        ext.resend_copy(original.id, ["accounts@example.net"])
    assert ext.messages().total == 1
