"""Backup accounts, the From of a backup, and the cool-down of failing accounts."""

from __future__ import annotations

import smtplib
from datetime import timedelta

import pytest
from apps import make_site
from flask_mail import Message
from misbehaving import Refuse

from flask_smtp_accounts import DeliveryError, InvalidAccountError
from flask_smtp_accounts.models import utcnow
from flask_smtp_accounts.testing import ClosingServer, free_port


def letter(**kw):
    values = {
        "subject": "Order 1",
        "sender": "Shop <shop@example.com>",
        "recipients": ["ann@example.org"],
        "body": "Thanks",
    }
    values.update(kw)
    return Message(**values)


def dead_account(add_account, smtp_server, **fields):
    """An account whose server refuses connections (nothing listens on its port)."""
    account = add_account(smtp_server, **fields)
    return add_ext_port(account, free_port())


def add_ext_port(account, port):
    from flask import current_app

    ext = current_app.extensions["smtp_accounts"].ext
    return ext.update_account(account.id, check=False, port=port)


def test_backup_with_another_email_sends_from_its_address_with_reply_to(
    mail, ext, add_account, make_smtp_server, smtp_server
):
    backup_server = make_smtp_server()
    backup = add_account(backup_server, sender_email="relay@example.net", sender_name="Relay")
    dead_account(add_account, smtp_server, sender_email="shop@example.com", backup_ids=[backup.id])

    mail.send(letter())

    [got] = backup_server.wait_for(1)
    assert got.mail_from == "relay@example.net"
    assert got.message["From"] == "Shop <relay@example.net>"
    assert got.message["Reply-To"] == "Shop <shop@example.com>"
    [row] = ext.messages().items
    assert row.status == "sent"
    assert row.account_id == backup.id and row.chosen_account_id != backup.id
    assert row.sent_from == "Shop <relay@example.net>"
    assert row.reply_to_added == "Shop <shop@example.com>"
    assert [h["result"] for h in row.history] == ["failed", "sent"]
    assert row.history[0]["stage"] == "connect"


def test_backup_keeps_the_letters_own_reply_to_and_uses_its_sender_name(
    mail, add_account, make_smtp_server, smtp_server
):
    backup_server = make_smtp_server()
    backup = add_account(backup_server, sender_email="relay@example.net", sender_name="Relay")
    dead_account(add_account, smtp_server, sender_email="shop@example.com", backup_ids=[backup.id])

    mail.send(letter(sender="shop@example.com", reply_to="support@example.com"))

    got = backup_server.wait_for(1)[0].message
    assert got["From"] == "Relay <relay@example.net>"
    assert got.get_all("Reply-To") == ["support@example.com"]


def test_backup_with_the_same_email_leaves_from_alone(mail, add_account, make_smtp_server, smtp_server):
    backup_server = make_smtp_server()
    backup = add_account(backup_server, sender_email="shop@example.com")
    primary = dead_account(add_account, smtp_server, sender_email="shop@example.com", backup_ids=[backup.id])
    # The larger id is chosen, so the primary must be the newer account.
    assert primary.id > backup.id

    mail.send(letter())

    got = backup_server.wait_for(1)[0]
    assert got.message["From"] == "Shop <shop@example.com>"
    assert got.message["Reply-To"] is None
    assert got.mail_from == "shop@example.com"


def test_chain_goes_in_order_and_skips_inactive_backups(
    mail, ext, add_account, make_smtp_server, smtp_server
):
    second = make_smtp_server(handler_hooks=Refuse("MAIL", "451 4.3.0 Busy"))
    third = make_smtp_server()
    inactive_server = make_smtp_server()
    inactive = add_account(inactive_server, sender_email="shop@example.com", active=False)
    b2 = add_account(second, sender_email="shop@example.com")
    b3 = add_account(third, sender_email="shop@example.com")
    primary = dead_account(
        add_account, smtp_server, sender_email="shop@example.com", backup_ids=[inactive.id, b2.id, b3.id]
    )

    mail.send(letter())

    assert third.wait_for(1)[0].message["Subject"] == "Order 1"
    assert second.received == [] and inactive_server.received == []
    row = ext.messages().items[0]
    assert row.account_id == b3.id and row.chosen_account_id == primary.id
    assert [(h["account_id"], h["result"], h.get("code")) for h in row.history] == [
        (primary.id, "failed", None),
        (b2.id, "failed", 451),
        (b3.id, "sent", None),
    ]


def test_permanent_refusal_is_not_tried_elsewhere(mail, ext, add_account, make_smtp_server):
    primary_server = make_smtp_server(handler_hooks=Refuse("DATA", "554 5.7.1 Spam"))
    backup_server = make_smtp_server()
    backup = add_account(backup_server, sender_email="relay@example.net")
    add_account(primary_server, sender_email="shop@example.com", backup_ids=[backup.id])

    with pytest.raises(DeliveryError) as raised:
        mail.send(letter())

    assert raised.value.code == 554 and raised.value.stage == "send"
    assert backup_server.received == []
    row = ext.get_message(raised.value.record_id)
    assert row.status == "failed" and row.error_code == 554 and row.body is not None


def test_failed_account_cools_down_and_letters_go_straight_to_the_backup(
    mail, ext, add_account, make_smtp_server, smtp_server
):
    backup_server = make_smtp_server()
    backup = add_account(backup_server, sender_email="shop@example.com")
    with ClosingServer() as closing:
        primary = add_account(smtp_server, sender_email="shop@example.com", backup_ids=[backup.id])
        ext.update_account(primary.id, check=False, port=closing.port)

        for n in range(3):
            mail.send(letter(subject=f"Order {n}"))

        assert closing.connections == 1
    assert len(backup_server.wait_for(3)) == 3
    rows = ext.messages().items
    assert [r.history[0]["stage"] for r in reversed(rows)] == ["connect", "cool-down", "cool-down"]
    health = ext.account_health()[primary.id]
    assert health.cooling_down and health.last_stage == "connect" and health.failures == 1
    assert utcnow() + timedelta(seconds=50) < health.cooldown_until <= utcnow() + timedelta(seconds=61)
    assert backup.id not in ext.account_health()


def test_cool_down_without_backup_fails_fast_naming_the_cause(mail, ext, add_account, smtp_server):
    with ClosingServer() as closing:
        primary = add_account(smtp_server, sender_email="shop@example.com")
        ext.update_account(primary.id, check=False, port=closing.port)
        with pytest.raises(DeliveryError) as first:
            mail.send(letter())
        with pytest.raises(smtplib.SMTPException) as second:
            mail.send(letter())
        assert closing.connections == 1
    assert first.value.stage == "connect"
    assert second.value.stage == "cool-down"  # type: ignore[attr-defined]
    assert "after a failure: connect failed" in str(second.value)
    assert [r.status for r in ext.messages().items] == ["failed", "failed"]


def test_cool_down_zero_tries_the_account_every_time(mail, ext, add_account, smtp_server):
    ext.update_settings(cooldown_s=0)
    with ClosingServer() as closing:
        primary = add_account(smtp_server, sender_email="shop@example.com")
        ext.update_account(primary.id, check=False, port=closing.port)
        for _ in range(2):
            with pytest.raises(DeliveryError):
                mail.send(letter())
        assert closing.connections == 2
    assert ext.account_health()[primary.id].failures == 2
    assert not ext.account_health()[primary.id].cooling_down


def test_other_processes_see_the_cool_down(
    tmp_path, app, ext, mail, add_account, smtp_server, encryption_key
):
    primary_id = dead_account(add_account, smtp_server, sender_email="shop@example.com").id
    with pytest.raises(DeliveryError):
        mail.send(letter())
    other = make_site(tmp_path / "instance", enabled=False, SMTP_ACCOUNTS_ENCRYPTION_KEYS=encryption_key)
    with other.app.app_context():
        seen = other.ext.account_health()[primary_id]
    assert seen.cooling_down and "Connection refused" in (seen.last_error or "")


def test_backup_ids_are_checked_and_kept_in_order(ext, add_account, smtp_server):
    a = add_account(smtp_server, sender_email="a@example.com")
    b = add_account(smtp_server, sender_email="b@example.com")
    c = add_account(smtp_server, sender_email="c@example.com", backup_ids=f"{b.id}, {a.id}")
    assert ext.get_account(c.id).backup_ids == (b.id, a.id)
    with pytest.raises(InvalidAccountError, match="no account with id 99"):
        ext.update_account(c.id, check=False, backup_ids=[a.id, 99])
    with pytest.raises(InvalidAccountError, match="its own backup"):
        ext.update_account(c.id, check=False, backup_ids=[c.id])
    with pytest.raises(InvalidAccountError, match="named twice"):
        ext.update_account(c.id, check=False, backup_ids=[a.id, a.id])
    assert ext.get_account(c.id).backup_ids == (b.id, a.id)
