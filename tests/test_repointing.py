"""A stored secret never follows a re-pointed account.

Someone who may edit accounts but never read a password points an account
at a server of their own and leaves the password blank ("keep the stored
one"). The change is refused on the secret's field, saying why, in the
Python API, the admin form and the command line, and the other server
receives nothing: no AUTH attempt, no token request.
"""

from __future__ import annotations

import typing as t

import pytest
from test_admin import ADMIN, account_form, add, post_form, text_of
from test_oauth2 import oauth_fields

from flask_smtp_accounts import InvalidAccountError
from flask_smtp_accounts.testing import LOGIN, PASSWORD
from flask_smtp_accounts.testing.oauth import CLIENT_ID, CLIENT_SECRET, OAuthServer

WHY = "changed, and a stored secret is only ever sent where it was entered for"


@pytest.fixture
def thief(make_smtp_server: t.Any) -> t.Any:
    """The re-pointer's own server: it records every AUTH attempt."""
    return make_smtp_server(auth=(LOGIN, "the thief's own"))


def saved(ext: t.Any, server: t.Any, **fields: t.Any) -> t.Any:
    values = {
        "sender_email": "shop@example.com",
        "host": server.host,
        "port": server.port,
        "security": "none",
        "auth": "login",
        "login": LOGIN,
        **fields,
    }
    return ext.add_account(password=PASSWORD, check=False, **values)


@pytest.mark.parametrize("change", ["port", "host and port", "login", "security", "verify_tls"])
def test_re_pointing_an_account_without_its_password_is_refused(change, ext, auth_server, thief):
    account = saved(ext, auth_server)
    changes = {
        "port": {"port": thief.port},
        "host and port": {"host": "localhost", "port": thief.port},
        "login": {"login": "someone-else"},
        "security": {"security": "starttls"},
        "verify_tls": {"verify_tls": False},
    }[change]
    with pytest.raises(InvalidAccountError) as refused:
        ext.update_account(account.id, **changes)

    assert refused.value.field == "password"
    assert WHY in refused.value.message and next(iter(changes)) in refused.value.message
    assert thief.auth_attempts == [] and auth_server.auth_attempts == []
    assert (ext.get_account(account.id).host, ext.get_account(account.id).port) == (
        auth_server.host,
        auth_server.port,
    )


def test_re_pointing_with_the_password_given_again_is_checked_and_saved(ext, auth_server, make_smtp_server):
    other = make_smtp_server(auth=(LOGIN, PASSWORD))
    account = saved(ext, auth_server)
    ext.update_account(account.id, password=PASSWORD, port=other.port)
    assert ext.get_account(account.id).port == other.port
    assert [attempt.login for attempt in other.auth_attempts] == [LOGIN]


def test_other_changes_keep_the_stored_password(ext, auth_server):
    account = saved(ext, auth_server)
    ext.update_account(account.id, sender_name="Shop", active=False)
    assert ext.get_account(account.id).sender_name == "Shop"
    assert [attempt.success for attempt in auth_server.auth_attempts] == [True]


def test_the_admin_form_asks_for_the_password_again_on_its_field(admin_site, auth_server, thief):
    account_id = add(admin_site, auth_server)
    client = admin_site.app.test_client()
    client.get("/test-login/admin")
    form = account_form(auth_server, port=str(thief.port), new_password="")
    response = post_form(client, f"{ADMIN}/accounts/edit/?id={account_id}", form)

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    field = page[page.index('name="new_password"') :]
    assert WHY in text_of(field[: field.index("</div>") + 400])
    assert "The account was not saved" in text_of(page)
    assert thief.auth_attempts == []


def test_the_command_line_refuses_to_re_point_without_the_password(app, ext, auth_server, thief):
    account = saved(ext, auth_server)
    result = app.test_cli_runner().invoke(
        args=["smtp-accounts", "edit", str(account.id), "--port", str(thief.port)]
    )

    assert result.exit_code != 0
    assert "password" in result.output and WHY in result.output
    assert thief.auth_attempts == []


# --- OAuth2 ---------------------------------------------------------------------------------


@pytest.fixture
def provider() -> t.Iterator[OAuthServer]:
    with OAuthServer() as server:
        yield server


@pytest.fixture
def thief_provider() -> t.Iterator[OAuthServer]:
    with OAuthServer() as server:
        yield server


@pytest.fixture
def oauth_smtp(make_smtp_server: t.Any, certs: t.Any, provider: OAuthServer) -> t.Any:
    return make_smtp_server(
        tls="starttls", cert=(certs.server_cert, certs.server_key), xoauth2=provider.xoauth2
    )


def oauth2_account(ext: t.Any, smtp: t.Any, provider: OAuthServer, **fields: t.Any) -> t.Any:
    return ext.add_account(
        check=False, **oauth_fields(smtp, provider, oauth_authorize_url=provider.authorize_url, **fields)
    )


@pytest.mark.parametrize("field", ["oauth_token_url", "port"])
def test_re_pointing_an_oauth2_account_without_its_client_secret_is_refused(
    field, ext, oauth_smtp, provider, thief_provider, thief
):
    account = oauth2_account(ext, oauth_smtp, provider)
    change = {"oauth_token_url": thief_provider.token_url, "port": thief.port}[field]
    with pytest.raises(InvalidAccountError) as refused:
        ext.update_account(account.id, **{field: change})

    assert refused.value.field == "oauth_client_secret"
    assert WHY in refused.value.message and field in refused.value.message
    assert thief_provider.requests == [] and provider.requests == [] and thief.auth_attempts == []


def test_a_delegated_account_moved_to_another_token_endpoint_needs_a_new_sign_in(
    ext, oauth_smtp, provider, thief_provider
):
    refresh_token = provider.issue_refresh_token(LOGIN)
    account = oauth2_account(
        ext, oauth_smtp, provider, oauth_flow="delegated", oauth_refresh_token=refresh_token
    )
    with pytest.raises(InvalidAccountError) as refused:
        ext.update_account(
            account.id, oauth_token_url=thief_provider.token_url, oauth_client_secret=CLIENT_SECRET
        )

    assert refused.value.field == "oauth_refresh_token"
    assert thief_provider.requests == []


def test_the_sign_in_button_never_sends_the_stored_client_secret_to_a_typed_token_url(
    admin_site, certs, thief_provider
):
    with OAuthServer() as provider:
        with admin_site.app.app_context():
            smtp = type("Server", (), {"host": "127.0.0.1", "port": 587})
            account_id = oauth2_account(admin_site.ext, smtp, provider).id
        client = admin_site.app.test_client()
        client.get("/test-login/admin")
        form = {
            "active": "y",
            "sender_name": "",
            "sender_email": "shop@example.com",
            "host": "127.0.0.1",
            "port": "587",
            "security": "starttls",
            "verify_tls": "y",
            "auth": "oauth2",
            "login": LOGIN,
            "oauth_provider": "custom",
            "oauth_flow": "delegated",
            "oauth_tenant": "",
            "oauth_client_id": CLIENT_ID,
            "oauth_client_secret": "",
            "oauth_refresh_token": "",
            "oauth_scope": "smtp",
            "oauth_token_url": thief_provider.token_url,
            "oauth_authorize_url": thief_provider.authorize_url,
            "backup_ids": "",
        }
        response = post_form(
            client,
            f"{ADMIN}/accounts/oauth2/sign-in/?id={account_id}",
            form,
            form_url=f"{ADMIN}/accounts/edit/?id={account_id}",
        )

    assert response.status_code == 200  # the form again, not a redirect to the provider
    assert WHY in text_of(response.get_data(as_text=True))
    assert thief_provider.requests == [] and provider.requests == []
