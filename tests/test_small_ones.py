"""Secrets kept out of ``repr()``, the login's length, settings out of range, and the logs list of a big site."""

from __future__ import annotations

import math
import typing as t

import pytest
import sqlalchemy as sa
from flask import current_app
from test_admin import ADMIN, account_form, post_form, text_of, write_log

from flask_smtp_accounts import InvalidAccountError, InvalidSettingError
from flask_smtp_accounts.oauth2_sign_in import SignedIn
from flask_smtp_accounts.testing import LOGIN, PASSWORD

# --- repr ----------------------------------------------------------------------------------


def test_no_repr_shows_a_secret(ext, encryption_key):
    state = current_app.extensions["smtp_accounts"]
    account = ext.add_account(
        password=PASSWORD, check=False, sender_email="shop@example.com", host="smtp.example.com", login=LOGIN
    )
    signed_in = SignedIn(0, {"login": LOGIN}, "client-s3cret", "refresh-t0ken", LOGIN)
    shown = " ".join(
        repr(thing) for thing in (state.config, signed_in, account, state.vault, state.access_tokens)
    )

    for secret in (encryption_key, "client-s3cret", "refresh-t0ken", PASSWORD, account.password_encrypted):
        assert secret not in shown
    assert LOGIN in shown  # the reprs still say what they are about


# --- the login's length --------------------------------------------------------------------


def login_fields(login: str) -> dict[str, t.Any]:
    return {"sender_email": "shop@example.com", "host": "smtp.example.com", "login": login}


def test_a_login_over_255_characters_is_refused(ext):
    assert ext.add_account(password="pw", check=False, **login_fields("x" * 255)).login == "x" * 255
    with pytest.raises(InvalidAccountError) as refused:
        ext.add_account(password="pw", check=False, **login_fields("x" * 256))
    assert refused.value.field == "login" and "at most 255 characters" in refused.value.message


def test_the_admin_form_refuses_a_login_over_255_characters(admin_site, smtp_server):
    client = admin_site.app.test_client()
    client.get("/test-login/admin")
    form = account_form(smtp_server, auth="login", login="x" * 256, new_password="pw")
    response = post_form(client, f"{ADMIN}/accounts/new/", form)
    assert response.status_code == 200
    assert "at most 255 characters" in text_of(response.get_data(as_text=True))


def test_the_command_line_refuses_a_login_over_255_characters(app):
    result = app.test_cli_runner().invoke(
        args=[
            "smtp-accounts",
            "add",
            "--sender-email",
            "shop@example.com",
            "--host",
            "smtp.example.com",
            "--login",
            "x" * 256,
            "--password-env",
            "PW",
            "--no-check",
        ],
        env={"PW": "pw"},
    )
    assert result.exit_code != 0 and "at most 255 characters" in result.output


# --- settings out of range -----------------------------------------------------------------


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, 10**400, True, 1.5, "1e400"])
def test_a_timeout_out_of_range_is_an_invalid_setting(ext, value):
    with pytest.raises(InvalidSettingError) as refused:
        ext.update_settings(timeout_s=value)
    assert refused.value.field == "timeout_s"
    assert ext.settings.timeout_s == 10


# --- the logs list of a site with many accounts ---------------------------------------------


def statements_to_list_logs(admin_site: t.Any, accounts: int, url: str = f"{ADMIN}/logs/") -> tuple[int, str]:
    """Give the site ``accounts`` accounts with a log each; the SQL statements the logs page runs, and its text."""
    with admin_site.app.app_context():
        ext, db = admin_site.ext, admin_site.site.db
        have = db.session.query(ext.Account).count()
        for number in range(have, accounts):
            account = ext.add_account(
                check=False,
                sender_email=f"user{number:05}@example.com",
                host="smtp.example.com",
                auth="none",
                sender_name=f"User {number:05}",
            )
            write_log(admin_site, account.id, "send", "S: 220 ready\n")
        engine = db.engine
    client = admin_site.app.test_client()
    client.get("/test-login/admin")
    statements: list[str] = []

    def count(conn: t.Any, cursor: t.Any, statement: str, *args: t.Any) -> None:
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        response = client.get(url)
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert response.status_code == 200
    return len(statements), text_of(response.get_data(as_text=True))


def test_the_logs_list_is_paged_and_its_queries_do_not_grow_with_the_accounts(admin_site):
    few, _ = statements_to_list_logs(admin_site, 60)
    many, first = statements_to_list_logs(admin_site, 130)
    assert many == few

    assert "User 00000" in first and "User 00049" in first and "User 00050" not in first
    _, second = statements_to_list_logs(admin_site, 130, f"{ADMIN}/logs/?page=2")
    assert "User 00050" in second and "User 00099" in second and "User 00049" not in second
    _, third = statements_to_list_logs(admin_site, 130, f"{ADMIN}/logs/?page=3")
    assert "User 00100" in third and "User 00129" in third and "Next" not in third
