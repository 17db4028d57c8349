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


@pytest.mark.parametrize("address", RECIPIENTS, ids=str)
def test_each_address_is_what_flask_mail_would_send_to(address):
    ours = outcome(lambda: envelope_recipients([address]))
    flask_mails = outcome(lambda: [flask_mail.sanitize_address(address)])

    assert ours == flask_mails


def test_the_server_gets_flask_mails_envelope(add_account, make_smtp_server, mail):
    server = make_smtp_server()
    add_account(server)
    recipients = ["plain@example.org", "Bob <bob@example.org>", ("Zoë", "zoe@example.org"), "user@bücher.example"]
    message = Message("Hi", sender="hello@example.com", recipients=recipients, body="Hello.")

    mail.send(message)

    [received] = server.wait_for(1)
    assert sorted(received.rcpt_tos) == [
        "bob@example.org", "plain@example.org", "user@xn--bcher-kva.example", "zoe@example.org"
    ]
