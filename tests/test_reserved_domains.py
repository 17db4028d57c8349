"""Sender addresses on reserved domains are accepted; the form notes that the internet does not route them."""

# ruff: noqa: F811 - fixtures imported from other test modules are taken as arguments by name

from __future__ import annotations

import typing as t

import pytest
from test_admin import ADMIN, account_form, accounts, client, post_form, text_of  # noqa: F401 - client is a fixture

from flask_smtp_accounts import InvalidAccountError

RESERVED = [
    "hello@shop.test",
    "hello@printer.local",
    "hello@localhost",
    "hello@shop.invalid",
    "hello@shop.example",
]


@pytest.mark.parametrize("address", RESERVED)
def test_an_address_on_a_reserved_domain_is_saved(ext: t.Any, smtp_server: t.Any, address: str) -> None:
    account = ext.add_account(
        check=False,
        sender_email=address,
        host=smtp_server.host,
        port=smtp_server.port,
        security="none",
        auth="none",
    )

    assert account.sender_email == address


@pytest.mark.parametrize("address", ["hello@@shop.test", "hello@-shop.local", "hello shop@x.test"])
def test_an_address_not_valid_in_form_is_still_refused(ext: t.Any, smtp_server: t.Any, address: str) -> None:
    with pytest.raises(InvalidAccountError, match="is not a valid email address"):
        ext.add_account(
            check=False,
            sender_email=address,
            host=smtp_server.host,
            port=smtp_server.port,
            security="none",
            auth="none",
        )


@pytest.mark.parametrize(
    ("address", "name"), [("hello@shop.test", "test"), ("hello@shop.example", "example")]
)
def test_the_form_notes_a_domain_the_internet_does_not_route(
    admin_site: t.Any,
    client: t.Any,
    starttls_server: t.Any,
    address: str,
    name: str,
) -> None:
    response = post_form(
        client,
        f"{ADMIN}/accounts/new/",
        account_form(starttls_server, sender_email=address),
        follow_redirects=True,
    )

    page = text_of(response.get_data(as_text=True))
    assert "The account passed the check." in page
    assert f"Note: {address} ends in .{name}, a name reserved for private and test use" in page
    assert [a.sender_email for a in accounts(admin_site)] == [address]


def test_an_ordinary_domain_gets_no_note(admin_site: t.Any, client: t.Any, starttls_server: t.Any) -> None:
    response = post_form(
        client, f"{ADMIN}/accounts/new/", account_form(starttls_server), follow_redirects=True
    )

    page = text_of(response.get_data(as_text=True))
    assert "The account passed the check." in page and "Note:" not in page
