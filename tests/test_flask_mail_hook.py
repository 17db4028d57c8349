"""The envelope recipients of a routed letter are Flask-Mail's, shortcut or not."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flask_mail
import pytest
from flask_mail import Message

from flask_smtp_accounts.flask_mail_hook import envelope_recipients

RECIPIENTS = [
    "plain@example.org",
    "UPPER.Case+tag@Sub.Example.ORG",
    "o'brien&co@example.org",
    "Bob <bob@example.org>",
    ("Zoë Ünïcode", "zoe@example.org"),
    "user@bücher.example",
    "ünï@example.org",
    '"quoted local"@example.org',
    "  spaced@example.org  ",
    "no-domain",
    "trailing.dot.@example.org",
    "two@at@example.org",
]


def outcome(function: Callable[[], Any]) -> Any:
    try:
        return function()
    except Exception as err:  # noqa: BLE001 - the same failure is the same outcome
        return type(err)


@pytest.mark.one_database
@pytest.mark.parametrize("address", RECIPIENTS, ids=str)
def test_each_address_is_what_flask_mail_would_send_to(address):
    ours = outcome(lambda: envelope_recipients([address]))
    flask_mails = outcome(lambda: [flask_mail.sanitize_address(address)])

    assert ours == flask_mails


def test_the_server_gets_flask_mails_envelope(add_account, make_smtp_server, mail):
    server = make_smtp_server()
    add_account(server)
    recipients = [
        "plain@example.org",
        "Bob <bob@example.org>",
        ("Zoë", "zoe@example.org"),
        "user@bücher.example",
    ]
    message = Message("Hi", sender="hello@example.com", recipients=recipients, body="Hello.")

    mail.send(message)

    [received] = server.wait_for(1)
    assert sorted(received.rcpt_tos) == [
        "bob@example.org",
        "plain@example.org",
        "user@xn--bcher-kva.example",
        "zoe@example.org",
    ]


def test_a_display_name_holding_an_address_never_picks_that_addresss_account(
    add_account, make_smtp_server, mail
):
    billing = make_smtp_server(auth=("billing-login", "billing-password"))
    hello = make_smtp_server(auth=("hello-login", "hello-password"))
    add_account(
        billing, sender_email="billing@shop.example", login="billing-login", password="billing-password"
    )
    add_account(hello, sender_email="hello@shop.example", login="hello-login", password="hello-password")
    message = Message(
        "Hi",
        sender=("Eve <billing@shop.example>", "hello@shop.example"),
        recipients=["bob@example.org"],
        body="Hello.",
    )

    mail.send(message)

    [received] = hello.wait_for(1)
    assert billing.received == [] and billing.auth_attempts == []
    assert received.login == "hello-login" and received.mail_from == "hello@shop.example"
    from_header = received.message["From"]
    assert from_header.addresses[0].display_name == "Eve <billing@shop.example>"
    assert from_header.addresses[0].addr_spec == "hello@shop.example"
    assert len(from_header.addresses) == 1
    # Flask-Mail encodes a name with specials as one RFC 2047 word, as it does for '"Eve <...>" <hello@...>'.
    assert b"From: =?utf-8?q?Eve_=3Cbilling=40shop=2Eexample=3E?= <hello@shop.example>\r\n" in received.data


@pytest.mark.parametrize(
    "given", [("Shop", "hello@example.com"), ("Zoë Ünïcode", "hello@example.com")], ids=str
)
def test_a_plain_tuple_sender_is_what_flask_mail_makes_of_it(given, add_account, make_smtp_server, mail):
    server = make_smtp_server()
    add_account(server)
    message = Message("Hi", sender=given, recipients=["bob@example.org"], body="Hello.")
    flask_mails_from = flask_mail.sanitize_address(f"{given[0]} <{given[1]}>")

    mail.send(message)

    [received] = server.wait_for(1)
    assert message.sender == f"{given[0]} <{given[1]}>"
    assert f"From: {flask_mails_from}\r\n".encode() in received.data


def test_a_tuple_sender_given_by_position_or_as_the_default_is_kept_whole(
    app, ext, add_account, make_smtp_server, monkeypatch
):
    add_account(make_smtp_server(), sender_email="billing@shop.example")
    hello = add_account(make_smtp_server(), sender_email="hello@shop.example")
    given = ("Eve <billing@shop.example>", "hello@shop.example")
    by_position = Message("Hi", ["bob@example.org"], "Hello.", None, None, given)
    monkeypatch.setattr(app.extensions["mail"], "default_sender", given)
    by_default = Message("Hi", recipients=["bob@example.org"], body="Hello.")
    changed = Message("Hi", sender=given, recipients=["bob@example.org"], body="Hello.")
    changed.sender = "billing@shop.example"  # set after the fact: the tuple no longer speaks for it

    assert [ext.choose_account(m).account.id for m in (by_position, by_default)] == [hello.id, hello.id]
    assert ext.choose_account(changed).account.sender_email == "billing@shop.example"
