"""One connection block remembers routes per sender; every letter still goes where its own From says.

A newsletter's letters after the first reuse the block's choice of account,
its headers and its sender text. These tests mix, in one block, what must
not share a remembered route: bulk and ordinary letters, display names, a
letter with its own Reply-To and one without, through a backup with another
address.
"""

from __future__ import annotations

from typing import Any

from flask_mail import Message

from flask_smtp_accounts import bulk_sending
from flask_smtp_accounts.testing import free_port


def letter(sender: Any, subject: str, **kwargs: Any) -> Message:
    return Message(subject, sender=sender, recipients=["bob@example.org"], body="Hello.", **kwargs)


def test_bulk_and_ordinary_letters_from_one_address_alternate_in_a_block(mail, add_account, make_smtp_server):
    marketing_server, pulse_server = make_smtp_server(), make_smtp_server()
    add_account(marketing_server, sender_email="hello@example.com", sender_name="Marketing")
    add_account(pulse_server, sender_email="hello@example.com", sender_name="")
    bulk = {"List-Unsubscribe": "<mailto:stop@example.com>"}

    with mail.connect() as conn:
        for n in range(3):
            conn.send(letter("Marketing <hello@example.com>", f"bulk {n}", extra_headers=bulk))
            conn.send(letter("Marketing <hello@example.com>", f"ordinary {n}"))
            conn.send(letter("Other <hello@example.com>", f"other name {n}", extra_headers=bulk))

    assert [r.message["Subject"] for r in marketing_server.wait_for(3)] == ["bulk 0", "bulk 1", "bulk 2"]
    assert [r.message["Subject"] for r in pulse_server.wait_for(6)] == [
        "ordinary 0",
        "other name 0",
        "ordinary 1",
        "other name 1",
        "ordinary 2",
        "other name 2",
    ]


def test_the_same_from_inside_and_outside_bulk_sending_in_one_block(mail, add_account, make_smtp_server):
    marketing_server, pulse_server = make_smtp_server(), make_smtp_server()
    add_account(marketing_server, sender_email="hello@example.com", sender_name="Marketing")
    add_account(pulse_server, sender_email="hello@example.com", sender_name="")

    with mail.connect() as conn:
        conn.send(letter(("Marketing", "hello@example.com"), "ordinary"))
        with bulk_sending():
            conn.send(letter(("Marketing", "hello@example.com"), "bulk"))
        conn.send(letter(("Marketing", "hello@example.com"), "ordinary again"))

    assert [r.message["Subject"] for r in marketing_server.wait_for(1)] == ["bulk"]
    assert [r.message["Subject"] for r in pulse_server.wait_for(2)] == ["ordinary", "ordinary again"]


def test_reply_to_through_a_backup_follows_each_letter(ext, mail, add_account, make_smtp_server):
    backup_server = make_smtp_server()
    backup = add_account(backup_server, sender_email="support@example.com", sender_name="Support")
    ext.add_account(
        check=False,
        sender_email="shop@example.com",
        host="127.0.0.1",
        port=free_port(),
        security="none",
        auth="none",
        backup_ids=[backup.id],
    )

    with mail.connect() as conn:
        conn.send(letter("Shop <shop@example.com>", "no reply-to"))
        conn.send(letter("Shop <shop@example.com>", "own reply-to", reply_to="help@example.com"))
        conn.send(letter("Shop <shop@example.com>", "no reply-to again"))
        conn.send(letter("Sales <shop@example.com>", "other name"))

    got = {r.message["Subject"]: r.message for r in backup_server.wait_for(4)}
    assert got["no reply-to"]["Reply-To"] == "Shop <shop@example.com>"
    assert got["own reply-to"].get_all("Reply-To") == ["help@example.com"]
    assert got["no reply-to again"]["Reply-To"] == "Shop <shop@example.com>"
    assert got["other name"]["Reply-To"] == "Sales <shop@example.com>"
    assert {m["From"] for m in got.values()} == {"Shop <support@example.com>", "Sales <support@example.com>"}
    assert [m.sender for m in ext.messages().items] == [
        "Sales <shop@example.com>",
        "Shop <shop@example.com>",
        "Shop <shop@example.com>",
        "Shop <shop@example.com>",
    ]


def test_single_sends_follow_every_account_change_at_the_next_send(ext, mail, add_account, make_smtp_server):
    first_server, second_server = make_smtp_server(), make_smtp_server()
    first = add_account(first_server, sender_email="hello@example.com", sender_name="First")

    mail.send(letter("hello@example.com", "1"))
    second = add_account(second_server, sender_email="hello@example.com", sender_name="Second")
    mail.send(letter("hello@example.com", "2"))
    ext.update_account(second.id, check=False, active=False)
    mail.send(letter("hello@example.com", "3"))
    ext.update_account(first.id, check=False, sender_name="Renamed")
    mail.send(letter("hello@example.com", "4"))
    mail.send(letter("hello@example.com", "5"))

    got = {r.message["Subject"]: r.message["From"] for r in first_server.wait_for(4)}
    assert got == {
        "1": "First <hello@example.com>",
        "3": "First <hello@example.com>",
        "4": "Renamed <hello@example.com>",
        "5": "Renamed <hello@example.com>",
    }
    assert [(r.message["Subject"], r.message["From"]) for r in second_server.wait_for(1)] == [
        ("2", "Second <hello@example.com>")
    ]
