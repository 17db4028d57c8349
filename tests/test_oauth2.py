"""OAuth2 (SASL XOAUTH2) accounts against a local provider and real SMTP servers (issue 8).

The provider is :class:`flask_smtp_accounts.testing.oauth.OAuthServer` on
127.0.0.1: expiring tokens on a clock the test moves, refresh tokens
rotated and voided on use, the providers' error answers. The SMTP server
accepts only an access token that the provider holds valid right now.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from apps import Site, make_site, stored_rows
from flask import current_app
from flask_mail import Message

from flask_smtp_accounts import AccountCheckFailed, DeliveryError, InvalidAccountError, OAuth2Error
from flask_smtp_accounts.oauth2 import (
    GOOGLE_SCOPE,
    MICROSOFT_APP_SCOPE,
    AccessTokens,
    authorization_url,
    grant_of,
    token_url_of,
)
from flask_smtp_accounts.sasl import xoauth2_response
from flask_smtp_accounts.testing import LOGIN, Certs, SMTPServer
from flask_smtp_accounts.testing.oauth import CLIENT_ID, CLIENT_SECRET, OAuthServer

RCPT = "bob@example.org"


@pytest.fixture
def provider() -> Iterator[OAuthServer]:
    with OAuthServer() as server:
        yield server


@pytest.fixture
def oauth_smtp(certs: Certs, provider: OAuthServer) -> Iterator[SMTPServer]:
    """STARTTLS, then AUTH XOAUTH2 with a token the provider holds valid."""
    with SMTPServer(
        tls="starttls", cert=(certs.server_cert, certs.server_key), xoauth2=provider.xoauth2
    ) as server:
        yield server


def oauth_fields(server: SMTPServer, provider: OAuthServer, **fields: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "sender_email": "hello@example.com",
        "host": server.host,
        "port": server.port,
        "security": "starttls",
        "auth": "oauth2",
        "login": LOGIN,
        "oauth_provider": "custom",
        "oauth_flow": "app",
        "oauth_token_url": provider.token_url,
        "oauth_scope": MICROSOFT_APP_SCOPE,
        "oauth_client_id": CLIENT_ID,
        "oauth_client_secret": CLIENT_SECRET,
    }
    values.update(fields)
    return values


def letter(subject: str = "Hello") -> Message:
    return Message(subject, sender="hello@example.com", recipients=[RCPT], body="Hi.")


def stored_row(app: Any, account_id: int) -> dict[str, Any]:
    [row] = stored_rows(app, "select * from smtp_accounts_account where id = :id", id=account_id)
    return row


def tokens() -> AccessTokens:
    return current_app.extensions["smtp_accounts"].access_tokens  # type: ignore[no-any-return]


# --- app-only (client credentials) --------------------------------------------------


def test_app_only_account_is_checked_then_sends_with_one_token_for_many_letters(
    ext, app, mail, provider, oauth_smtp
):
    account = ext.add_account(**oauth_fields(oauth_smtp, provider))

    assert [(r.grant_type, r.scope, r.ok) for r in provider.requests] == [
        ("client_credentials", MICROSOFT_APP_SCOPE, True)
    ]
    with mail.connect() as conn:
        for n in range(3):
            conn.send(letter(f"Letter {n}"))
    mail.send(letter("In a block of its own"))

    received = oauth_smtp.wait_for(4)
    assert [r.login for r in received] == [LOGIN] * 4
    assert all(r.tls for r in received)
    assert [r.message["Subject"] for r in received] == [
        "Letter 0",
        "Letter 1",
        "Letter 2",
        "In a block of its own",
    ]
    # One fetch for the check (an unsaved account is never cached), one for all the sending.
    assert len(provider.requests) == 2
    assert [a.mechanism for a in oauth_smtp.auth_attempts] == ["XOAUTH2"] * 3
    row = stored_row(app, account.id)
    assert CLIENT_SECRET not in str(row) and row["oauth_client_secret_encrypted"]
    assert row["oauth_refresh_token_encrypted"] is None


def test_the_token_is_renewed_shortly_before_it_expires(ext, mail, provider, oauth_smtp):
    tokens().clock = provider.now
    ext.add_account(**oauth_fields(oauth_smtp, provider))
    mail.send(letter("first"))
    fetched = len(provider.requests)

    provider.advance(3000)  # 600 s left: still used
    mail.send(letter("second"))
    assert len(provider.requests) == fetched

    provider.advance(400)  # 200 s left, under the 300 s margin: renewed before it expires
    mail.send(letter("third"))
    assert len(provider.requests) == fetched + 1
    assert [r.message["Subject"] for r in oauth_smtp.wait_for(3)] == ["first", "second", "third"]
    assert all(a.success for a in oauth_smtp.auth_attempts)


def test_a_cached_token_the_server_refuses_is_replaced_once(ext, mail, provider, oauth_smtp):
    ext.add_account(**oauth_fields(oauth_smtp, provider))
    mail.send(letter("first"))
    provider.revoke_access_tokens()

    mail.send(letter("second"))

    assert [r.message["Subject"] for r in oauth_smtp.wait_for(2)] == ["first", "second"]
    assert [a.success for a in oauth_smtp.auth_attempts] == [True, True, False, True]
    assert len(provider.requests) == 3


def test_concurrent_connections_share_one_fetch(ext, provider, oauth_smtp):
    account = ext.add_account(check=False, **oauth_fields(oauth_smtp, provider))
    results: list[str] = []
    barrier = threading.Barrier(5)

    def fetch() -> None:
        barrier.wait()
        results.append(cache.get(account, timeout=5).value)

    cache = tokens()
    threads = [threading.Thread(target=fetch) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(provider.requests) == 1
    assert len(set(results)) == 1 and len(results) == 5


# --- delegated (refresh token) ----------------------------------------------------------


def delegated(server: SMTPServer, provider: OAuthServer, refresh_token: str, **fields: Any) -> dict[str, Any]:
    values = {
        "oauth_flow": "delegated",
        "oauth_scope": "https://outlook.office.com/SMTP.Send offline_access",
        "oauth_refresh_token": refresh_token,
        **fields,
    }
    return oauth_fields(server, provider, **values)


def google_delegated(server: SMTPServer, google: OAuthServer) -> dict[str, Any]:
    """A Google account signed in a moment ago (a fresh refresh token), on the provider's own endpoint."""
    return delegated(
        server,
        google,
        google.issue_refresh_token(),
        oauth_provider="google",
        oauth_scope="",
        oauth_token_url="",
    )


def test_a_rotated_refresh_token_is_stored_encrypted(ext, mail, app, provider, oauth_smtp):
    first = provider.issue_refresh_token(LOGIN)

    account = ext.add_account(**delegated(oauth_smtp, provider, first))

    # The check used (and voided) the given token; the account holds the one it was rotated to.
    valid = provider.refresh_tokens
    assert first not in valid and len(valid) == 1
    row = stored_row(app, account.id)
    assert (
        current_app.extensions["smtp_accounts"].vault.decrypt(row["oauth_refresh_token_encrypted"]) in valid
    )
    assert first not in str(row) and not any(rt in str(row) for rt in valid)

    mail.send(letter())
    assert oauth_smtp.wait_for(1)[0].login == LOGIN
    after = stored_row(app, account.id)
    latest = current_app.extensions["smtp_accounts"].vault.decrypt(after["oauth_refresh_token_encrypted"])
    assert provider.refresh_tokens == {latest: LOGIN}
    # Storing a rotation is not a change of the account (that would clear its logs).
    assert after["updated_at"] == row["updated_at"]
    assert [r.grant_type for r in provider.requests] == ["refresh_token", "refresh_token"]


def test_a_rotation_that_cannot_be_stored_is_kept_in_memory(ext, provider, oauth_smtp):
    account = ext.add_account(check=False, **delegated(oauth_smtp, provider, provider.issue_refresh_token()))
    state = current_app.extensions["smtp_accounts"]
    saved: list[str] = []

    def store(account_id: int, ciphertext: str) -> None:
        if not saved:
            saved.append("refused")
            raise OSError("database is locked")
        saved.append(state.vault.decrypt(ciphertext))

    cache = AccessTokens(state.vault, store, providers=state.config.oauth2_providers)
    cache.get(account, timeout=5)
    cache.forget(account)
    cache.get(account, timeout=5)  # the stored token is void now; the one in memory works

    assert [r.ok for r in provider.requests] == [True, True]
    assert saved[0] == "refused" and saved[-1] in provider.refresh_tokens


def test_signing_in_again_as_someone_else_drops_the_cached_token(ext, mail, provider, certs):
    other = "other@example.com"
    provider.mailboxes.add(other)
    with SMTPServer(
        tls="starttls", cert=(certs.server_cert, certs.server_key), xoauth2=provider.xoauth2
    ) as server:
        account = ext.add_account(**delegated(server, provider, provider.issue_refresh_token(LOGIN)))
        mail.send(letter())
        ext.update_account(account.id, login=other, oauth_refresh_token=provider.issue_refresh_token(other))
        mail.send(letter())
        assert [r.login for r in server.wait_for(2)] == [LOGIN, other]


# --- errors a person can act on ---------------------------------------------------------


@pytest.mark.parametrize(
    ("break_it", "reason", "fix"),
    [
        ("expire", "the refresh token has expired", "Sign in again"),
        ("consent", "consent is missing", "Grant admin consent"),
        ("bad_secret", "client secret was refused", "Certificates & secrets"),
        ("expired_secret", "the client secret has expired", "create a new one"),
    ],
)
def test_token_errors_name_the_fix_and_nothing_is_saved(microsoft_site, certs, break_it, reason, fix):
    site, microsoft = microsoft_site
    refresh_token = microsoft.issue_refresh_token()
    if break_it == "expire":
        microsoft.expire_refresh_token(refresh_token)
    else:
        microsoft.failing = break_it

    with SMTPServer(
        tls="starttls", cert=(certs.server_cert, certs.server_key), xoauth2=microsoft.xoauth2
    ) as server:
        with pytest.raises(AccountCheckFailed) as failed:
            site.ext.add_account(
                **delegated(server, microsoft, refresh_token, oauth_provider="microsoft", oauth_token_url="")
            )
        assert server.auth_attempts == []

    result = failed.value.result
    assert result.stage == "token"
    assert reason in result.message
    assert fix in (result.hint or "")
    assert site.ext.Account.query.count() == 0


def test_a_refused_client_secret_says_where_the_google_console_makes_a_new_one(google_site, certs):
    site, google = google_site
    google.failing = "bad_secret"
    with SMTPServer(
        tls="starttls", cert=(certs.server_cert, certs.server_key), xoauth2=google.xoauth2
    ) as server:
        result = site.ext.check_account(google_delegated(server, google))

    assert (result.ok, result.stage) == (False, "token")
    assert result.hint == (
        "Check the client id and tenant, and enter a valid client secret (create a new one in Google Cloud"
        " console > APIs & Services > Credentials). Enter the secret's value, not its id."
    )


def test_a_refused_client_secret_of_a_custom_provider_points_at_its_console(ext, certs):
    with OAuthServer(style="google") as custom:
        custom.failing = "bad_secret"
        with SMTPServer(
            tls="starttls", cert=(certs.server_cert, certs.server_key), xoauth2=custom.xoauth2
        ) as server:
            result = ext.check_account(oauth_fields(server, custom))

    assert (result.ok, result.stage) == (False, "token")
    assert result.hint == (
        "Check the client id and tenant, and enter a valid client secret (create a new one in the provider's"
        " console). Enter the secret's value, not its id."
    )


def local_site(
    instance: Path, key: str, certs: Certs, mail_port: int, name: str, provider: OAuthServer
) -> Site:
    """A site whose provider ``name`` ("microsoft" or "google") is the local ``provider``."""
    base = f"{provider.base_url}/{{tenant}}/oauth2/v2.0"
    return make_site(
        instance,
        SMTP_ACCOUNTS_ENCRYPTION_KEYS=key,
        SMTP_ACCOUNTS_CA_FILE=str(certs.ca_cert),
        MAIL_PORT=mail_port,
        SMTP_ACCOUNTS_OAUTH2_PROVIDERS={
            name: {"token_url": f"{base}/token", "authorize_url": f"{base}/authorize"}
        },
    )


@pytest.fixture
def microsoft_site(
    tmp_path: Path, encryption_key: str, certs: Certs, smtp_server: SMTPServer
) -> Iterator[tuple[Site, OAuthServer]]:
    """A site whose "microsoft" provider is a local one speaking Microsoft's errors."""
    with OAuthServer(style="microsoft") as microsoft:
        made = local_site(
            tmp_path / "instance", encryption_key, certs, smtp_server.port, "microsoft", microsoft
        )
        with made.app.app_context():
            yield made, microsoft
            made.db.session.remove()
            made.db.engine.dispose()


@pytest.fixture
def google_site(
    tmp_path: Path, encryption_key: str, certs: Certs, smtp_server: SMTPServer
) -> Iterator[tuple[Site, OAuthServer]]:
    """A site whose "google" provider is a local one speaking Google's errors (no rotation, like Google)."""
    with OAuthServer(style="google", rotate_refresh_tokens=False) as google:
        made = local_site(tmp_path / "instance", encryption_key, certs, smtp_server.port, "google", google)
        with made.app.app_context():
            yield made, google
            made.db.session.remove()
            made.db.engine.dispose()


def test_google_delegated_account_sends_and_an_expired_token_says_how_to_fix_it(google_site, certs):
    site, google = google_site
    refresh_token = google.issue_refresh_token(LOGIN)
    with SMTPServer(
        tls="starttls", cert=(certs.server_cert, certs.server_key), xoauth2=google.xoauth2
    ) as server:
        fields = delegated(
            server, google, refresh_token, oauth_provider="google", oauth_scope="", oauth_token_url=""
        )
        account = site.ext.add_account(**fields)
        site.mail.send(letter())
        assert server.wait_for(1)[0].login == LOGIN
        assert {r.scope for r in google.requests} == {GOOGLE_SCOPE}
        assert google.refresh_tokens == {refresh_token: LOGIN}  # Google keeps its refresh tokens

        google.expire_refresh_token(refresh_token)
        tokens().forget()
        result = site.ext.check_account(site.ext.get_account(account.id))

    assert not result.ok and result.stage == "token"
    assert "invalid_grant: Token has been expired or revoked." in result.message
    assert "Sign in again" in (result.hint or "") and "Testing" in (result.hint or "")


#: What each refusal of a Microsoft-style endpoint reads as: reason, the fix's start, whether a person must act.
REFUSALS = {
    "expired": ("the refresh token has expired or was revoked", "Sign in again", True),
    "revoked": ("the refresh token has expired or was revoked", "The user's password changed", True),
    "consent": ("consent is missing", "An administrator must grant consent", True),
    "bad_secret": ("the client id or the client secret was refused", "Check the client id", True),
    "expired_secret": ("the client secret has expired", "Check the client id", True),
    "unknown_tenant": ("the tenant was not found", "Enter the directory (tenant) id", True),
    "grant_not_allowed": ("this client may not use this kind of grant", "For app-only access", True),
    "bad_scope": ("the scope was refused", f"Use the scope {MICROSOFT_APP_SCOPE}", True),
    "unavailable": ("the token endpoint is unavailable", "Try again later.", False),
    "unknown_error": ("the token endpoint refused the request", "Check the account's OAuth2 settings", True),
}


@pytest.mark.parametrize("failing", sorted(REFUSALS))
def test_each_refusal_of_the_token_endpoint_reads_as_its_reason_and_fix(
    ext, mail, provider, oauth_smtp, failing
):
    reason, fix, needs_action = REFUSALS[failing]
    refresh_token = provider.issue_refresh_token()
    if failing == "expired":
        provider.expire_refresh_token(refresh_token)
    else:
        provider.failing = failing
    ext.add_account(check=False, **delegated(oauth_smtp, provider, refresh_token))

    with pytest.raises(OAuth2Error) as failed:
        mail.send(letter())

    error = failed.value
    assert error.reason.startswith(reason) and (error.hint or "").startswith(fix)
    assert error.needs_action is needs_action and error.endpoint_down is not needs_action
    assert error.temporary  # the letter moves on to a backup, and back to the queue, either way
    assert oauth_smtp.received == []


def test_an_unreachable_token_endpoint_is_a_temporary_error(ext, mail, provider, oauth_smtp):
    ext.add_account(
        check=False, **oauth_fields(oauth_smtp, provider, oauth_token_url="http://127.0.0.1:9/token")
    )

    with pytest.raises(DeliveryError) as failed:
        mail.send(letter())

    error = failed.value
    assert isinstance(error, OAuth2Error) and error.stage == "token"
    assert error.temporary and error.endpoint_down and not error.needs_action
    assert "Check the token URL" in (error.hint or "")
    assert "could not be reached" in str(error)
    assert oauth_smtp.received == []


# --- the conversation and the logs ---------------------------------------------------------


@pytest.mark.parametrize("level", [1, 2, 3, 4])
def test_no_log_holds_a_token_or_a_secret(ext, mail, provider, oauth_smtp, caplog, level):
    ext.update_settings(log_level=level, save_logs=True)
    account = ext.add_account(**delegated(oauth_smtp, provider, provider.issue_refresh_token()))
    mail.send(letter("first"))
    provider.revoke_access_tokens()  # the next login is refused once: the 334 error payload is logged too
    mail.send(letter("second"))
    oauth_smtp.wait_for(2)

    texts = [
        ext.read_log(account.id, "send", length=1 << 20).text,
        ext.read_log(0, "check", length=1 << 20).text,
    ]
    texts.append("\n".join(r.getMessage() + str(getattr(r, "smtp_transcript", "")) for r in caplog.records))
    issued = [t for t in _issued_secrets(provider)]
    for text in texts:
        for secret in [CLIENT_SECRET, *issued]:
            assert secret not in text
            assert base64.b64encode(secret.encode()).decode()[:20] not in text
        assert "Bearer" not in text and "auth=" not in text
    send_log = texts[0]
    assert "AUTH XOAUTH2 [redacted]" in send_log
    if level >= 2:
        assert "334 [redacted]" in send_log
        assert "535" in send_log  # the refusal itself is not secret
    if level >= 3:
        assert "OAuth2 access token fetched from 127.0.0.1" in send_log


def _issued_secrets(provider: OAuthServer) -> list[str]:
    with provider._lock:
        return [*provider._access, *provider._refresh]


# --- validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"oauth_provider": "yahoo"}, "oauth_provider"),
        ({"oauth_client_id": ""}, "oauth_client_id"),
        ({"oauth_client_secret": ""}, "oauth_client_secret"),
        ({"oauth_token_url": ""}, "oauth_token_url"),
        ({"oauth_token_url": "http://login.example.com/token"}, "oauth_token_url"),
        ({"oauth_scope": ""}, "oauth_scope"),
        ({"login": ""}, "login"),
        ({"security": "none"}, "security"),
        ({"oauth_provider": "microsoft", "oauth_tenant": ""}, "oauth_tenant"),
        ({"oauth_provider": "microsoft", "oauth_tenant": "common"}, "oauth_tenant"),
        ({"oauth_provider": "google"}, "oauth_flow"),
        ({"oauth_flow": "delegated"}, "oauth_refresh_token"),
    ],
)
def test_oauth2_fields_are_validated_before_anything_is_written(ext, provider, oauth_smtp, changes, field):
    with pytest.raises(InvalidAccountError) as refused:
        ext.add_account(**oauth_fields(oauth_smtp, provider, **changes))
    assert refused.value.field == field
    assert provider.requests == []
    assert ext.Account.query.count() == 0


def test_provider_endpoints_and_scopes(ext):
    microsoft = ext.account_info(
        {
            "sender_email": "a@example.com",
            "host": "smtp.office365.com",
            "auth": "oauth2",
            "login": "a@example.com",
            "oauth_provider": "microsoft",
            "oauth_flow": "app",
            "oauth_tenant": "contoso.onmicrosoft.com",
            "oauth_client_id": "c",
            "oauth_client_secret": "s",
        }
    )
    vault = current_app.extensions["smtp_accounts"].vault
    assert (
        token_url_of(microsoft)
        == "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    )
    assert grant_of(microsoft, vault).scope == "https://outlook.office365.com/.default"

    google = ext.account_info(
        {
            "sender_email": "a@gmail.com",
            "host": "smtp.gmail.com",
            "auth": "oauth2",
            "login": "a@gmail.com",
            "oauth_provider": "google",
            "oauth_client_id": "c",
            "oauth_client_secret": "s",
            "oauth_refresh_token": "r",
        }
    )
    assert token_url_of(google) == "https://oauth2.googleapis.com/token"
    url = authorization_url(google, redirect_uri="https://site.example/cb", state="st", code_challenge="ch")
    assert url.startswith("https://accounts.google.com/o/oauth2/v2/auth?")
    for part in (
        "access_type=offline",
        "prompt=consent",
        "code_challenge_method=S256",
        "login_hint=a%40gmail.com",
        "scope=https%3A%2F%2Fmail.google.com%2F+openid+email",
    ):
        assert part in url


@pytest.mark.one_database
def test_xoauth2_initial_response():
    assert xoauth2_response("me@example.com", "tok") == "user=me@example.com\x01auth=Bearer tok\x01\x01"


# --- the command line -------------------------------------------------------------


def cli(app: Any, *args: str, **kwargs: Any) -> Any:
    return app.test_cli_runner().invoke(args=["smtp-accounts", *args], **kwargs)


def test_command_line_takes_the_secrets_from_environment_or_hidden_prompt(app, provider, oauth_smtp):
    refresh_token = provider.issue_refresh_token()
    result = cli(
        app,
        "add",
        "--sender-email",
        "hello@example.com",
        "--host",
        oauth_smtp.host,
        "--port",
        str(oauth_smtp.port),
        "--auth",
        "oauth2",
        "--login",
        LOGIN,
        "--oauth-provider",
        "custom",
        "--oauth-token-url",
        provider.token_url,
        "--oauth-scope",
        "smtp",
        "--oauth-client-id",
        CLIENT_ID,
        "--client-secret-env",
        "SECRET",
        env={"SECRET": CLIENT_SECRET},
        input=refresh_token + "\n",
    )

    assert result.exit_code == 0, result.output + result.stderr
    assert "OAuth2 refresh token:" in result.output
    assert refresh_token not in result.output and CLIENT_SECRET not in result.output
    assert f"Added account 1: hello@example.com via 127.0.0.1:{oauth_smtp.port} (starttls)" in result.output
    assert [a.success for a in oauth_smtp.auth_attempts] == [True]
    assert "oauth2" in cli(app, "list").output

    provider.failing = "bad_secret"
    failed = cli(app, "check", "1")
    assert failed.exit_code == 1
    error, hint = failed.stderr.splitlines()
    assert "the client id or the client secret was refused" in error
    assert hint.startswith("Hint: Check the client id and tenant")


def test_command_line_never_takes_a_secret_as_an_argument(app, provider, oauth_smtp):
    result = cli(
        app,
        "add",
        "--sender-email",
        "a@example.com",
        "--host",
        "h",
        "--auth",
        "oauth2",
        "--client-secret",
        "x",
    )
    assert result.exit_code == 2


# --- routing and failover work as for any account ---------------------------------------


def test_routing_and_failover_treat_an_oauth2_account_like_any_other(
    ext, mail, add_account, provider, oauth_smtp, starttls_server
):
    backup = add_account(starttls_server, sender_email="news@example.com")
    account = ext.add_account(
        backup_ids=(backup.id,), **oauth_fields(oauth_smtp, provider, sender_email="news@example.com")
    )
    assert ext.choose_account("news@example.com").account.id == account.id

    mail.send(Message("first", sender="news@example.com", recipients=[RCPT], body="x"))
    provider.revoke_access_tokens()
    provider.failing = "bad_secret"  # no new token either: the backup carries the letter
    mail.send(Message("second", sender="news@example.com", recipients=[RCPT], body="x"))

    assert [r.message["Subject"] for r in oauth_smtp.received] == ["first"]
    assert [r.message["Subject"] for r in starttls_server.wait_for(1)] == ["second"]


# --- signing in from the site (authorization code with PKCE) -------------------------------


def form_fields(server: SMTPServer, **fields: Any) -> dict[str, Any]:
    """What the account form posts when "Sign in with Microsoft" is pressed (no refresh token yet)."""
    values: dict[str, Any] = {
        "sender_email": "hello@example.com",
        "host": server.host,
        "port": server.port,
        "security": "starttls",
        "auth": "oauth2",
        "login": "",
        "oauth_provider": "microsoft",
        "oauth_flow": "delegated",
        "oauth_client_id": CLIENT_ID,
    }
    values.update(fields)
    return values


def provider_redirect(url: str) -> dict[str, str]:
    """Follow the browser to the authorization endpoint and read where it is sent back to."""
    import urllib.error
    import urllib.parse
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as redirected:
        opener.open(url, timeout=5)
    with redirected.value as response:
        location = response.headers["Location"]
    assert location.startswith("https://site.example/callback?")
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))


REDIRECT_URI = "https://site.example/callback"


@pytest.fixture
def signing_in(microsoft_site, certs) -> Iterator[tuple[Site, OAuthServer, SMTPServer]]:
    site, microsoft = microsoft_site
    microsoft.auto_approve = True
    with SMTPServer(
        tls="starttls", cert=(certs.server_cert, certs.server_key), xoauth2=microsoft.xoauth2
    ) as server:
        yield site, microsoft, server


def test_signing_in_stores_the_refresh_token_on_a_new_account_that_sends(signing_in):
    from flask_smtp_accounts.oauth2_sign_in import finish_sign_in, save_signed_in, start_sign_in

    site, microsoft, server = signing_in
    with site.app.test_request_context():
        url = start_sign_in(
            site.ext,
            form_fields(server),
            account_id=0,
            client_secret=CLIENT_SECRET,
            redirect_uri=REDIRECT_URI,
        )
        assert url.startswith(microsoft.base_url + "/common/oauth2/v2.0/authorize?")
        assert "code_challenge_method=S256" in url and "offline_access" in url
        answer = provider_redirect(url)
        account = save_signed_in(site.ext, finish_sign_in(site.ext, answer))

    assert account.login == LOGIN  # taken from the sign-in
    assert [r.grant_type for r in microsoft.requests][:1] == ["authorization_code"]
    site.mail.send(letter())
    assert server.wait_for(1)[0].login == LOGIN


@pytest.mark.parametrize("how", ["replayed", "forged", "no state", "denied"])
def test_a_forged_or_replayed_callback_stores_nothing(signing_in, how):
    from flask_smtp_accounts.oauth2_sign_in import SignInError, finish_sign_in, save_signed_in, start_sign_in

    site, microsoft, server = signing_in
    with site.app.test_request_context():
        url = start_sign_in(
            site.ext,
            form_fields(server),
            account_id=0,
            client_secret=CLIENT_SECRET,
            redirect_uri=REDIRECT_URI,
        )
        answer = provider_redirect(url)
        if how == "replayed":
            save_signed_in(site.ext, finish_sign_in(site.ext, answer))
            site.ext.delete_account(1)
        elif how == "forged":
            answer["state"] = "attacker-state"
        elif how == "no state":
            del answer["state"]
        else:
            answer = {"error": "access_denied", "state": answer["state"]}
        requests_before = len(microsoft.requests)
        with pytest.raises(SignInError):
            finish_sign_in(site.ext, answer)

    assert len(microsoft.requests) == requests_before  # the code was never even offered
    assert site.ext.Account.query.count() == 0


def test_the_code_is_useless_without_the_pkce_verifier(signing_in):
    from flask_smtp_accounts.oauth2 import Grant, exchange_code
    from flask_smtp_accounts.oauth2_sign_in import start_sign_in

    site, microsoft, server = signing_in
    with site.app.test_request_context():
        answer = provider_redirect(
            start_sign_in(
                site.ext,
                form_fields(server),
                account_id=0,
                client_secret=CLIENT_SECRET,
                redirect_uri=REDIRECT_URI,
            )
        )
    grant = Grant("microsoft", "delegated", microsoft.token_url, CLIENT_ID, CLIENT_SECRET, "x")

    with pytest.raises(OAuth2Error) as refused:
        exchange_code(
            grant, code=answer["code"], code_verifier="guessed", redirect_uri=REDIRECT_URI, timeout=5
        )

    assert "AADSTS501481" in str(refused.value)
    assert microsoft.refresh_tokens == {}


def test_signing_in_again_replaces_the_token_of_a_saved_account(signing_in):
    from flask_smtp_accounts.oauth2_sign_in import finish_sign_in, save_signed_in, start_sign_in

    site, microsoft, server = signing_in
    old = microsoft.issue_refresh_token()
    account = site.ext.add_account(
        **form_fields(server, login=LOGIN), oauth_client_secret=CLIENT_SECRET, oauth_refresh_token=old
    )
    for rt in list(microsoft.refresh_tokens):
        microsoft.expire_refresh_token(rt)  # the account's token is void now
    tokens().forget()
    assert not site.ext.check_account(site.ext.get_account(account.id)).ok

    with site.app.test_request_context():
        # The secret field left blank: the stored client secret is used.
        url = start_sign_in(
            site.ext,
            form_fields(server, login=LOGIN),
            account_id=account.id,
            client_secret=None,
            redirect_uri=REDIRECT_URI,
        )
        save_signed_in(site.ext, finish_sign_in(site.ext, provider_redirect(url)))

    assert site.ext.check_account(site.ext.get_account(account.id)).ok
    site.mail.send(letter())
    assert server.wait_for(1)[0].login == LOGIN


# --- hints for OAuth2 accounts, test letters, key rotation ---------------------------------------


def test_exchange_refusing_an_app_token_explains_the_exchange_setup(microsoft_site, certs):
    site, microsoft = microsoft_site
    with SMTPServer(
        tls="starttls",
        cert=(certs.server_cert, certs.server_key),
        xoauth2=lambda login, token: False,
        auth_reply="535 5.7.3 Authentication unsuccessful",
    ) as exchange:
        fields = oauth_fields(
            exchange,
            microsoft,
            oauth_provider="microsoft",
            oauth_tenant="contoso.onmicrosoft.com",
            oauth_token_url="",
            oauth_scope="",
        )
        result = site.ext.check_account(fields)

    assert not result.ok and result.stage == "login" and result.code == 535
    assert [r.scope for r in microsoft.requests] == [MICROSOFT_APP_SCOPE]
    assert "New-ServicePrincipal" in (result.hint or "") and "SMTP.SendAsApp" in (result.hint or "")


def test_gmail_refusing_a_token_says_to_sign_in_again(google_site, certs):
    site, google = google_site
    gmail_535 = "535-5.7.8 Username and Password not accepted.\r\n535 5.7.8  https://support.google.com/mail/?p=BadCredentials - gsmtp"
    with SMTPServer(
        tls="starttls",
        cert=(certs.server_cert, certs.server_key),
        xoauth2=lambda login, token: False,
        auth_reply=gmail_535,
    ) as gmail:
        result = site.ext.check_account(google_delegated(gmail, google))

    assert not result.ok and result.code == 535
    assert "Gmail refused the access token" in (result.hint or "")


def test_a_test_letter_goes_through_an_oauth2_account(ext, provider, oauth_smtp):
    account = ext.add_account(**oauth_fields(oauth_smtp, provider))

    result = ext.send_test_letter(account, "postmaster@example.org")

    assert result.ok
    got = oauth_smtp.wait_for(1)[0]
    assert got.login == LOGIN and got.rcpt_tos == ["postmaster@example.org"]
    assert got.message["Message-ID"] == result.message_id


def test_rotating_the_key_re_encrypts_the_oauth2_secrets(tmp_path, certs, smtp_server, provider, oauth_smtp):
    from cryptography.fernet import Fernet

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    instance = tmp_path / "instance"

    def site_with(keys: str) -> Site:
        return make_site(
            instance,
            SMTP_ACCOUNTS_ENCRYPTION_KEYS=keys,
            SMTP_ACCOUNTS_CA_FILE=str(certs.ca_cert),
            MAIL_PORT=smtp_server.port,
        )

    first = site_with(old)
    with first.app.app_context():
        first.ext.add_account(check=False, **delegated(oauth_smtp, provider, provider.issue_refresh_token()))
        first.db.session.remove()
        first.db.engine.dispose()
    both = site_with(f"{new},{old}")
    with both.app.app_context():
        both.ext.rotate_encryption_key()
        both.db.session.remove()
        both.db.engine.dispose()
    only_new = site_with(new)
    with only_new.app.app_context():
        assert only_new.ext.check_account(only_new.ext.get_account(1)).ok
        only_new.db.session.remove()
        only_new.db.engine.dispose()
