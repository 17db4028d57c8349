"""The routing preview refuses a sender that holds no address, on the page, the command line and the API."""

from __future__ import annotations

import typing as t

import pytest
from test_admin import ADMIN, client, post_form, text_of  # noqa: F401 - client is a fixture
from test_cli import cli_app, run  # noqa: F401 - the fixture

from flask_smtp_accounts import InvalidAddressError

NOT_ADDRESSES = ["not an address", "Shop <nobody>", "@example.com", ("Shop", "not an address")]


@pytest.mark.parametrize("sender", NOT_ADDRESSES, ids=str)
def test_the_api_refuses_a_sender_without_an_address(ext: t.Any, sender: t.Any) -> None:
    with pytest.raises(InvalidAddressError, match="holds no valid email address"):
        ext.choose_account(sender)


def test_the_api_still_routes_an_address(ext: t.Any) -> None:
    assert ext.choose_account("Shop <shop@example.com>").rule == "no-matching-account"


def test_the_preview_page_refuses_a_sender_without_an_address(client: t.Any) -> None:  # noqa: F811
    response = post_form(client, f"{ADMIN}/routing/", {"sender": "not an address"})

    page = text_of(response.get_data(as_text=True))
    assert response.status_code == 200
    assert "Enter an email address, or a name and an address." in page and "Rule:" not in page


def test_the_route_command_refuses_a_sender_without_an_address(cli_app: t.Any) -> None:  # noqa: F811
    routed = run(cli_app, "route", "not an address")

    assert routed.exit_code == 1
    assert routed.stderr == "Error: 'not an address' holds no valid email address.\n"
