"""An error and its fix-it hint never run together, and a letter's last error shows once."""

# ruff: noqa: F811 - fixtures imported from other test modules are taken as arguments by name

from __future__ import annotations

import html
import re
import typing as t

from flask_mail import Message
from misbehaving import Refuse
from test_admin import ADMIN, account_form, client, post_form  # noqa: F401 - client is a fixture
from test_cli import cli_app, run  # noqa: F401 - the fixture

from flask_smtp_accounts import DeliveryError
from flask_smtp_accounts.testing import LOGIN, PASSWORD

PLAIN_TEXT_HINT = "Port {port} answers in plain text, not TLS: the server expects STARTTLS on this port"


def alerts(source: str) -> list[tuple[str, str]]:
    """``(kind, text)`` of each flashed message of a page."""
    found = re.findall(r'<div class="alert alert-(\w+)[^"]*"[^>]*>(.*?)</div>', source, flags=re.S)
    return [
        (kind, " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split()).lstrip("× "))
        for kind, body in found
    ]


def test_the_admin_flashes_the_hint_apart_from_the_error(client: t.Any, starttls_server: t.Any) -> None:
    form = account_form(starttls_server, security="ssl")

    response = post_form(client, f"{ADMIN}/accounts/new/", form)

    shown = alerts(response.get_data(as_text=True))
    [(error_kind, error)] = [alert for alert in shown if alert[1].startswith("The account was not saved.")]
    [(hint_kind, hint)] = [alert for alert in shown if alert[1].startswith("Hint:")]
    assert error_kind == "danger" and "WRONG_VERSION_NUMBER" in error and "Port" not in error
    assert hint_kind == "info" and hint.startswith(
        "Hint: " + PLAIN_TEXT_HINT.format(port=starttls_server.port)
    )


def test_the_command_line_prints_the_hint_on_a_line_of_its_own(
    cli_app: t.Any, starttls_server: t.Any
) -> None:
    added = run(
        cli_app,
        "add",
        "--sender-email",
        "hello@example.com",
        "--host",
        starttls_server.host,
        "--port",
        str(starttls_server.port),
        "--security",
        "ssl",
        "--login",
        LOGIN,
        "--password-env",
        "SMTP_PASSWORD",
        env={"SMTP_PASSWORD": PASSWORD},
    )

    assert added.exit_code == 1
    error, hint = added.stderr.strip().split("\n")
    assert error.startswith("Error: tls failed") and error.endswith("WRONG_VERSION_NUMBER")
    assert hint.startswith("Hint: " + PLAIN_TEXT_HINT.format(port=starttls_server.port))


def test_the_last_error_of_a_letter_shows_once(
    admin_site: t.Any, client: t.Any, make_smtp_server: t.Any
) -> None:
    refusing = make_smtp_server(handler_hooks=Refuse("DATA", "554 5.7.1 Refused by policy"))
    with admin_site.app.app_context():
        admin_site.ext.add_account(
            check=False,
            sender_email="shop@example.com",
            host=refusing.host,
            port=refusing.port,
            security="none",
            auth="none",
        )
        try:
            admin_site.site.mail.send(
                Message("Hi", sender="shop@example.com", recipients=["a@example.org"], body=".")
            )
        except DeliveryError as err:
            record_id = err.record_id

    source = client.get(f"{ADMIN}/messages/{record_id}/").get_data(as_text=True)

    [last_error] = re.findall(r'<dd class="col-sm-9 sa-error">(.*?)</dd>', source, flags=re.S)
    assert last_error.count("Refused by policy") == 1
