"""First end-to-end check: a letter goes through the account of its From address."""

from __future__ import annotations

from flask_mail import Message


def test_letter_goes_through_matching_account(mail, add_account, starttls_server, smtp_server):
    add_account(starttls_server, sender_email="hello@example.com", sender_name="Hello")
    mail.send(Message("Hi", sender="hello@example.com", recipients=["bob@example.org"], body="x"))
    got = starttls_server.wait_for(1)[0]
    assert got.tls and got.login == "user@example.com"
    assert got.mail_from == "hello@example.com"
    assert got.message["From"] == "Hello <hello@example.com>"
    assert smtp_server.received == []
