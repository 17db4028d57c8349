"""The "Sign in with Microsoft / Google" button of the account form (issue 8).

Microsoft's endpoints are replaced by a local provider
(``SMTP_ACCOUNTS_OAUTH2_PROVIDERS``), so the site runs exactly the code a
real sign-in runs. The test client follows the redirects by hand; the
browser test signs in through the provider's page in Chromium.
"""

from __future__ import annotations

import re
import typing as t
import urllib.error
import urllib.parse
import urllib.request

import pytest
from flask_mail import Message
from helpers import AdminSite, LiveServer

from flask_smtp_accounts.testing import LOGIN, Certs, SMTPServer
from flask_smtp_accounts.testing.oauth import CLIENT_ID, CLIENT_SECRET, OAuthServer

ADMIN = "/admin/smtp-accounts/accounts"


@pytest.fixture
def microsoft() -> t.Iterator[OAuthServer]:
    with OAuthServer(style="microsoft") as provider:
        yield provider


@pytest.fixture
def oauth_smtp(certs: Certs, microsoft: OAuthServer) -> t.Iterator[SMTPServer]:
    with SMTPServer(
        tls="starttls", cert=(certs.server_cert, certs.server_key), xoauth2=microsoft.xoauth2
    ) as server:
        yield server


@pytest.fixture
def admin_site_config(microsoft: OAuthServer) -> dict[str, t.Any]:
    base = f"{microsoft.base_url}/{{tenant}}/oauth2/v2.0"
    return {
        "SMTP_ACCOUNTS_OAUTH2_PROVIDERS": {
            "microsoft": {"token_url": f"{base}/token", "authorize_url": f"{base}/authorize"}
        }
    }


def form_data(server: SMTPServer, csrf: str, **fields: str) -> dict[str, str]:
    values = {
        "csrf_token": csrf,
        "active": "y",
        "sender_email": "hello@example.com",
        "host": server.host,
        "port": str(server.port),
        "security": "starttls",
        "verify_tls": "y",
        "auth": "oauth2",
        "login": "",
        "oauth_provider": "microsoft",
        "oauth_flow": "delegated",
        "oauth_tenant": "",
        "oauth_client_id": CLIENT_ID,
        "oauth_client_secret": CLIENT_SECRET,
        "oauth_refresh_token": "",
        "oauth_scope": "",
        "oauth_token_url": "",
        "oauth_authorize_url": "",
    }
    values.update(fields)
    return values


def csrf_of(html: str) -> str:
    match = re.search(
        r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"', html
    )
    assert match, "no CSRF token in the form"
    return match[1] or match[2]


def at_provider(location: str) -> str:
    """The browser at the provider, signing in at once: where the provider sends it back to."""

    class Stop(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: t.Any, **kwargs: t.Any) -> None:
            return None

    with pytest.raises(urllib.error.HTTPError) as redirected:
        urllib.request.build_opener(Stop).open(location, timeout=5)
    with redirected.value as response:
        return str(response.headers["Location"])


def accounts(site: AdminSite) -> list[t.Any]:
    with site.app.app_context():
        return [
            a.to_info() for a in site.site.db.session.query(site.ext.Account).order_by(site.ext.Account.id)
        ]


def flashed(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def sign_in(client: t.Any, server: SMTPServer, microsoft: OAuthServer, **fields: str) -> str:
    """Press the button on a new account's form and come back from the provider: the callback URL."""
    csrf = csrf_of(client.get(f"{ADMIN}/new/").get_data(as_text=True))
    started = client.post(f"{ADMIN}/oauth2/sign-in/", data=form_data(server, csrf, **fields))
    assert started.status_code == 302, started.get_data(as_text=True)
    assert started.location.startswith(microsoft.authorize_url.replace(microsoft.tenant, "common"))
    return at_provider(started.location)


def test_the_form_shows_the_button_and_the_redirect_url_to_register(admin_site):
    client = admin_site.app.test_client()
    client.get("/test-login/admin")

    page = client.get(f"{ADMIN}/new/").get_data(as_text=True)

    assert "Sign in with Microsoft / Google" in page
    assert f'formaction="{ADMIN}/oauth2/sign-in/"' in page
    assert f"<code>http://localhost{ADMIN}/oauth2/callback/</code>" in page


def test_signing_in_saves_a_checked_account_that_sends(admin_site, microsoft, oauth_smtp):
    microsoft.auto_approve = True
    client = admin_site.app.test_client()
    client.get("/test-login/admin")

    back = sign_in(client, oauth_smtp, microsoft)
    assert back.startswith(f"http://localhost{ADMIN}/oauth2/callback/?")
    done = client.get(back, follow_redirects=True)

    page = flashed(done.get_data(as_text=True))
    assert "Signed in as user@example.com. The account passed the check and was saved" in page
    [account] = accounts(admin_site)
    assert account.login == LOGIN and account.oauth_refresh_token_encrypted
    with admin_site.app.app_context():
        admin_site.site.mail.send(
            Message("Hi", sender="hello@example.com", recipients=["bob@example.org"], body="x")
        )
    assert oauth_smtp.wait_for(1)[0].login == LOGIN


def test_the_limits_and_connections_entered_on_the_form_are_saved_by_the_sign_in(
    admin_site, microsoft, oauth_smtp
):
    microsoft.auto_approve = True
    client = admin_site.app.test_client()
    client.get("/test-login/admin")

    back = sign_in(client, oauth_smtp, microsoft, max_connections="3", limit_per_minute="30")
    client.get(back, follow_redirects=True)

    [account] = accounts(admin_site)
    assert (account.max_connections, account.limit_per_minute) == (3, 30)


def test_a_replayed_callback_stores_nothing(admin_site, microsoft, oauth_smtp):
    microsoft.auto_approve = True
    client = admin_site.app.test_client()
    client.get("/test-login/admin")
    back = sign_in(client, oauth_smtp, microsoft)
    client.get(back)
    with admin_site.app.app_context():
        admin_site.ext.delete_account(accounts(admin_site)[0].id)

    again = client.get(back, follow_redirects=True)

    assert (
        "Signing in failed: This sign-in answer does not match a sign-in started from this browser"
        in flashed(again.get_data(as_text=True))
    )
    assert accounts(admin_site) == []


def test_a_forged_callback_stores_nothing(admin_site, microsoft, oauth_smtp):
    microsoft.auto_approve = True
    client = admin_site.app.test_client()
    client.get("/test-login/admin")
    back = sign_in(client, oauth_smtp, microsoft)
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(back).query))
    # An attacker's own code, sent to the victim's browser with a state of the attacker's choosing.
    forged = client.get(
        f"{ADMIN}/oauth2/callback/?" + urllib.parse.urlencode({"code": query["code"], "state": "x" * 43})
    )
    # The victim's session never started a sign-in with that state; and without a session, nothing either.
    stranger = admin_site.app.test_client()
    stranger.get("/test-login/admin")
    replay_elsewhere = stranger.get(back, follow_redirects=True)

    assert forged.status_code == 302
    assert "does not match a sign-in started from this browser" in flashed(
        replay_elsewhere.get_data(as_text=True)
    )
    assert accounts(admin_site) == []
    assert [r.grant_type for r in microsoft.requests] == []  # no code was ever offered to the token endpoint


def test_a_sign_in_whose_check_fails_stores_nothing(admin_site, microsoft, certs):
    microsoft.auto_approve = True
    client = admin_site.app.test_client()
    client.get("/test-login/admin")
    # A server that refuses every token, as Exchange does while SMTP AUTH is off for the mailbox.
    with SMTPServer(
        tls="starttls", cert=(certs.server_cert, certs.server_key), xoauth2=lambda login, token: False
    ) as server:
        back = sign_in(client, server, microsoft)
        done = client.get(back, follow_redirects=True)
        assert [a.success for a in server.auth_attempts] == [False]

    page = flashed(done.get_data(as_text=True))
    assert "You signed in, but the account failed its check, so nothing was saved." in page
    assert "535 5.7.8" in page
    assert accounts(admin_site) == []


def test_the_form_comes_back_naming_a_missing_field(admin_site, microsoft, oauth_smtp):
    client = admin_site.app.test_client()
    client.get("/test-login/admin")
    csrf = csrf_of(client.get(f"{ADMIN}/new/").get_data(as_text=True))

    answer = client.post(f"{ADMIN}/oauth2/sign-in/", data=form_data(oauth_smtp, csrf, oauth_client_id=""))

    assert answer.status_code == 200
    assert "Required with OAuth2: the app&#39;s client (application) ID." in answer.get_data(as_text=True)
    assert 'value="hello@example.com"' in answer.get_data(as_text=True)
    assert CLIENT_SECRET not in answer.get_data(as_text=True)


def test_only_account_managers_may_sign_in(admin_site, oauth_smtp):
    client = admin_site.app.test_client()
    client.get("/test-login/reader")

    assert client.post(f"{ADMIN}/oauth2/sign-in/", data={}).status_code == 403
    assert client.get(f"{ADMIN}/oauth2/callback/?code=c&state=s").status_code == 403


# --- in a real browser ------------------------------------------------------------------


@pytest.mark.browser
def test_sign_in_with_microsoft_in_the_browser_ends_with_an_account_that_sends(
    browser, admin_site, microsoft, oauth_smtp
):
    from browser import fill_account_form, flashes, login, new_context

    with LiveServer(admin_site.app) as live:
        context = new_context(browser, live.url)
        try:
            page = context.new_page()
            login(page, "admin")
            page.goto(f"{ADMIN}/new/")
            fill_account_form(
                page,
                sender_name="Shop",
                sender_email="hello@example.com",
                host=oauth_smtp.host,
                port=oauth_smtp.port,
                security="starttls",
                auth="oauth2",
                oauth_provider="microsoft",
                oauth_flow="delegated",
                oauth_client_id=CLIENT_ID,
                oauth_client_secret=CLIENT_SECRET,
            )
            assert page.locator("#new_password").is_hidden()
            assert f"{live.url}{ADMIN}/oauth2/callback/" in page.locator(".sa-redirect-uri").inner_text()
            page.click("text=Sign in with Microsoft")

            page.wait_for_url(f"{microsoft.base_url}/**")
            assert "Sign in to the test provider" in page.content()
            page.click("text=Accept")

            page.wait_for_url(f"{live.url}{ADMIN}/edit/**")
            assert any("Signed in as user@example.com" in text for text in flashes(page))
        finally:
            context.close()

    [account] = accounts(admin_site)
    assert (account.sender_name, account.login, account.auth) == ("Shop", LOGIN, "oauth2")
    with admin_site.app.app_context():
        admin_site.site.mail.send(
            Message("Hi", sender="hello@example.com", recipients=["bob@example.org"], body="x")
        )
    received = oauth_smtp.wait_for(1)
    assert received[0].login == LOGIN
    assert received[0].message["From"] == "Shop <hello@example.com>"
