"""Routing rules 1-7 of issue 2, each against real SMTP servers.

Every account gets its own plain server, so the server that received a
letter tells which account carried it; the From header and the envelope
are read from what that server received.
"""

from __future__ import annotations

from collections.abc import Callable
from email.headerregistry import Address
from typing import Any

import pytest
from flask_mail import Message

from flask_smtp_accounts import bulk_sending
from flask_smtp_accounts.routing import RULE_BULK_NAME, RULE_DISABLED, RULE_LARGEST_ID, RULE_NO_ACCOUNT
from flask_smtp_accounts.testing import Received, SMTPServer

RCPT = "bob@example.org"


def letter(sender: Any, subject: str = "Hi", **kwargs: Any) -> Message:
    return Message(subject, sender=sender, recipients=[RCPT], body="Hello.", **kwargs)


def only(server: SMTPServer, *silent: SMTPServer) -> Received:
    """The one letter ``server`` received, after checking that the ``silent`` servers got none."""
    [got] = server.wait_for(1)
    for other in silent:
        assert other.received == [], f"{other!r} received a letter too"
    return got


@pytest.fixture
def servers(make_smtp_server: Callable[..., SMTPServer]) -> list[SMTPServer]:
    """Three plain servers, one per account."""
    return [make_smtp_server() for _ in range(3)]


# --- rule 1: candidates, case-insensitive, any form of sender ------------------


@pytest.mark.parametrize(
    "sender",
    [
        "hello@example.com",
        "HELLO@Example.COM",
        "Hello Team <Hello@EXAMPLE.com>",
        ("Hello Team", "hELLo@example.COM"),
        ("", "hello@EXAMPLE.com"),
    ],
    ids=["plain", "upper", "name-addr", "tuple", "tuple-no-name"],
)
def test_from_address_matches_case_insensitively_in_every_form(
    mail, add_account, servers, smtp_server, sender
):
    account_server, other = servers[0], servers[1]
    add_account(account_server, sender_email="Hello@Example.com")
    add_account(other, sender_email="someone-else@example.com")

    mail.send(letter(sender))

    got = only(account_server, other, smtp_server)
    assert got.rcpt_tos == [RCPT]


def test_inactive_account_takes_no_part(mail, add_account, servers, smtp_server):
    active_server, inactive_server = servers[0], servers[1]
    add_account(active_server)
    add_account(inactive_server, active=False)  # larger id, but inactive

    mail.send(letter("hello@example.com"))

    only(active_server, inactive_server, smtp_server)


def test_only_inactive_accounts_means_flask_mails_own_server(mail, add_account, servers, smtp_server):
    add_account(servers[0], active=False)

    mail.send(letter("hello@example.com"))

    got = only(smtp_server, servers[0])
    assert got.mail_from == "hello@example.com"


def test_deactivating_an_account_takes_it_out_at_once(ext, mail, add_account, servers, smtp_server):
    older = add_account(servers[0])
    newer = add_account(servers[1])
    mail.send(letter("hello@example.com", "first"))
    only(servers[1], servers[0])

    ext.update_account(newer.id, check=False, active=False)
    mail.send(letter("hello@example.com", "second"))

    assert only(servers[0]).message["Subject"] == "second"
    assert older.id < newer.id
    assert [r.message["Subject"] for r in servers[1].received] == ["first"]


# --- rule 2: the largest id ----------------------------------------------------


def test_largest_id_wins_among_candidates(mail, add_account, servers, smtp_server):
    first = add_account(servers[0], sender_name="Alpha")
    second = add_account(servers[1], sender_name="Beta")
    third = add_account(servers[2], sender_name="Gamma")
    assert first.id < second.id < third.id

    mail.send(letter("hello@example.com"))

    only(servers[2], servers[0], servers[1], smtp_server)


def test_largest_id_wins_even_when_it_was_edited_first(ext, mail, add_account, servers):
    first = add_account(servers[0])
    second = add_account(servers[1])
    ext.update_account(first.id, check=False, sender_name="Edited last")  # newest updated_at, smaller id

    mail.send(letter("hello@example.com"))

    only(servers[1], servers[0])
    assert second.id > first.id


# --- rule 3: bulk letters choose by display name ------------------------------


@pytest.fixture
def newsletter_accounts(add_account, servers):
    """The original's example: account "Marketing" and, with a larger id, one with no name."""
    marketing = add_account(servers[0], sender_email="hello@example.com", sender_name="Marketing 34web")
    pulse = add_account(servers[1], sender_email="hello@example.com", sender_name="")
    assert marketing.id < pulse.id
    return servers[0], servers[1]


@pytest.mark.parametrize(
    "headers",
    [
        {"List-Unsubscribe": "<mailto:unsubscribe@example.com>"},
        {"list-unsubscribe": "<https://example.com/u/1>"},
        {"Precedence": "bulk"},
        {"Precedence": "List"},
    ],
    ids=["List-Unsubscribe", "lowercase-header", "Precedence-bulk", "Precedence-list"],
)
def test_bulk_letter_goes_through_the_account_named_like_its_sender(
    mail, newsletter_accounts, smtp_server, headers
):
    marketing, pulse = newsletter_accounts

    mail.send(letter("Marketing 34web <hello@example.com>", extra_headers=headers))

    got = only(marketing, pulse, smtp_server)
    assert got.message["From"] == "Marketing 34web <hello@example.com>"
    for name, value in headers.items():
        assert got.message[name] == value


def test_letters_inside_bulk_sending_are_bulk(ext, mail, newsletter_accounts):
    marketing, pulse = newsletter_accounts

    with bulk_sending(), mail.connect() as conn:
        conn.send(letter(("Marketing 34web", "hello@example.com"), "issue 1"))
        conn.send(letter("Marketing 34web <hello@example.com>", "issue 2"))
    with ext.bulk_sending():
        mail.send(letter("Marketing 34web <hello@example.com>", "issue 3"))
    mail.send(letter("Marketing 34web <hello@example.com>", "not bulk"))

    assert [r.message["Subject"] for r in marketing.wait_for(3)] == ["issue 1", "issue 2", "issue 3"]
    assert [r.message["Subject"] for r in pulse.wait_for(1)] == ["not bulk"]


def test_display_name_does_not_count_for_ordinary_letters(mail, newsletter_accounts):
    marketing, pulse = newsletter_accounts

    mail.send(letter("Marketing 34web <hello@example.com>", extra_headers={"Precedence": "junk"}))

    only(pulse, marketing)


def test_bulk_letter_whose_name_matches_no_account_takes_the_largest_id(mail, newsletter_accounts):
    marketing, pulse = newsletter_accounts

    mail.send(letter("Sales <hello@example.com>", extra_headers={"Precedence": "bulk"}))

    only(pulse, marketing)


def test_bulk_letter_without_display_name_takes_the_largest_id(mail, newsletter_accounts):
    marketing, pulse = newsletter_accounts

    with bulk_sending():
        mail.send(letter("hello@example.com"))

    only(pulse, marketing)


def test_bulk_name_comparison_picks_the_named_account_among_several(mail, add_account, servers):
    add_account(servers[0], sender_name="News")
    add_account(servers[1], sender_name="Digest")
    add_account(servers[2], sender_name="Alerts")

    with bulk_sending():
        mail.send(letter("Digest <hello@example.com>"))

    only(servers[1], servers[0], servers[2])


# --- rule 4: the account's sender name only when the letter has none -----------


@pytest.mark.parametrize(
    ("sender", "expected"),
    [
        ("Own Name <hello@example.com>", ("Own Name", "hello@example.com")),
        (("Own Name", "hello@example.com"), ("Own Name", "hello@example.com")),
        ("hello@example.com", ("Account Name", "hello@example.com")),
        (("", "hello@example.com"), ("Account Name", "hello@example.com")),
    ],
    ids=["own-name-str", "own-name-tuple", "no-name-str", "no-name-tuple"],
)
def test_letters_own_display_name_is_kept_otherwise_the_accounts_is_used(
    mail, add_account, servers, sender, expected
):
    add_account(servers[0], sender_name="Account Name")

    mail.send(letter(sender))

    [address] = only(servers[0]).message["From"].addresses
    assert (address.display_name, address.addr_spec) == expected


def test_non_ascii_account_name_is_encoded_in_from(mail, add_account, servers):
    add_account(servers[0], sender_name="Интернет-магазин «Ромашка»")

    mail.send(letter("hello@example.com"))

    got = only(servers[0])
    assert got.message["From"].addresses == (
        Address(display_name="Интернет-магазин «Ромашка»", addr_spec="hello@example.com"),
    )
    assert b"\xd0" not in got.data.split(b"\r\n\r\n", 1)[0]


def test_account_without_name_leaves_a_bare_from(mail, add_account, servers):
    add_account(servers[0], sender_name="")

    mail.send(letter("hello@example.com"))

    got = only(servers[0])
    assert got.message["From"] == "hello@example.com"


def test_the_callers_message_is_left_as_it_was(mail, add_account, servers):
    add_account(servers[0], sender_name="Account Name")
    message = letter("hello@example.com")

    mail.send(message)

    assert message.sender == "hello@example.com"
    assert only(servers[0]).message["From"] == "Account Name <hello@example.com>"


# --- rule 5: the envelope sender ---------------------------------------------


def test_envelope_sender_is_the_accounts_email(mail, add_account, servers):
    add_account(servers[0], sender_email="Hello@Example.com")

    mail.send(letter("Someone <HELLO@example.com>"))

    got = only(servers[0])
    assert got.mail_from == "Hello@Example.com"
    assert got.message["From"] == "Someone <HELLO@example.com>"


@pytest.mark.parametrize(
    ("envelope_from", "expected"),
    [
        ("bounces@example.com", "bounces@example.com"),
        (("Bounces", "bounces@example.com"), "bounces@example.com"),
    ],
    ids=["str", "tuple"],
)
def test_envelope_from_given_by_the_caller_is_kept(mail, add_account, servers, envelope_from, expected):
    add_account(servers[0])

    with mail.connect() as conn:
        conn.send(letter("hello@example.com"), envelope_from=envelope_from)

    got = only(servers[0])
    assert got.mail_from == expected
    assert got.message["From"] == "hello@example.com"


def test_all_recipients_are_in_the_envelope_and_bcc_not_in_the_headers(mail, add_account, servers):
    add_account(servers[0])

    mail.send(
        Message(
            "Hi",
            sender="hello@example.com",
            recipients=["a@example.org"],
            cc=["b@example.org"],
            bcc=["c@example.org"],
            body="x",
        )
    )

    got = only(servers[0])
    assert sorted(got.rcpt_tos) == ["a@example.org", "b@example.org", "c@example.org"]
    assert got.message["Bcc"] is None


# --- rule 6: no candidate ------------------------------------------------------


def test_letter_from_an_unknown_address_goes_to_flask_mails_server(mail, add_account, servers, smtp_server):
    add_account(servers[0], sender_email="hello@example.com", sender_name="Account Name")

    mail.send(letter("Stranger <stranger@example.net>"))

    got = only(smtp_server, servers[0])
    assert got.mail_from == "stranger@example.net"
    assert got.message["From"] == "Stranger <stranger@example.net>"


def test_no_account_at_all_means_flask_mails_server(mail, smtp_server):
    with mail.connect() as conn:
        conn.send(letter("a@example.com", "one"))
        conn.send(letter("b@example.com", "two"), envelope_from="bounce@example.com")

    got = smtp_server.wait_for(2)
    assert [(r.mail_from, r.message["Subject"]) for r in got] == [
        ("a@example.com", "one"),
        ("bounce@example.com", "two"),
    ]


def test_routed_and_unrouted_letters_in_one_block(mail, add_account, servers, smtp_server):
    add_account(servers[0])

    with mail.connect() as conn:
        conn.send(letter("hello@example.com", "routed"))
        conn.send(letter("other@example.com", "own server"))

    assert only(servers[0]).message["Subject"] == "routed"
    assert only(smtp_server).message["Subject"] == "own server"


# --- disabled: Flask-Mail untouched -----------------------------------------


def test_disabled_routing_leaves_flask_mail_untouched(ext, mail, add_account, servers, smtp_server):
    add_account(servers[0], sender_name="Account Name")
    ext.update_settings(enabled=False)

    with mail.connect() as conn:
        conn.send(letter("hello@example.com"))

    got = only(smtp_server, servers[0])
    assert got.mail_from == "hello@example.com"
    assert got.message["From"] == "hello@example.com"
    assert ext.choose_account("hello@example.com").rule == RULE_DISABLED


def test_enabling_routing_again_routes_the_next_letter(ext, mail, add_account, servers, smtp_server):
    add_account(servers[0])
    ext.update_settings(enabled=False)
    mail.send(letter("hello@example.com", "off"))
    ext.update_settings(enabled=True)
    mail.send(letter("hello@example.com", "on"))

    assert only(smtp_server).message["Subject"] == "off"
    assert only(servers[0]).message["Subject"] == "on"


# --- rule 7: choose_account ---------------------------------------------------


def test_choose_account_names_the_account_and_rule_without_sending(ext, add_account, servers, smtp_server):
    first = add_account(servers[0], sender_name="Marketing")
    second = add_account(servers[1])

    plain = ext.choose_account("HELLO@example.com")
    as_tuple = ext.choose_account(("Marketing", "hello@example.com"))
    bulk = ext.choose_account(("Marketing", "hello@example.com"), bulk=True)
    message = ext.choose_account(
        letter("Marketing <hello@example.com>", extra_headers={"List-Unsubscribe": "<x>"})
    )
    nobody = ext.choose_account("nobody@example.com")

    assert (plain.account.id, plain.rule) == (second.id, RULE_LARGEST_ID)
    assert plain.candidates == (second.id, first.id)
    assert (as_tuple.account.id, as_tuple.rule) == (second.id, RULE_LARGEST_ID)
    assert (bulk.account.id, bulk.rule) == (first.id, RULE_BULK_NAME)
    assert (message.account.id, message.rule) == (first.id, RULE_BULK_NAME)
    assert (nobody.account, nobody.rule, nobody.candidates) == (None, RULE_NO_ACCOUNT, ())
    assert "largest id" in plain.reason
    assert "MAIL_" in nobody.reason
    for server in (*servers, smtp_server):
        assert server.received == []


def test_choose_account_agrees_with_where_the_letter_goes(ext, mail, add_account, servers):
    add_account(servers[0], sender_name="Digest")
    add_account(servers[1])
    message = letter("Digest <hello@example.com>", extra_headers={"Precedence": "bulk"})

    choice = ext.choose_account(message)
    mail.send(message)

    assert choice.account.port == servers[0].port
    only(servers[0], servers[1])


def test_choose_account_inside_bulk_sending(ext, add_account, servers):
    named = add_account(servers[0], sender_name="Digest")
    add_account(servers[1])

    with bulk_sending():
        choice = ext.choose_account("Digest <hello@example.com>")

    assert (choice.account.id, choice.rule) == (named.id, RULE_BULK_NAME)
    assert ext.choose_account("Digest <hello@example.com>").rule == RULE_LARGEST_ID
