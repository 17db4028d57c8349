"""The admin pages through Flask's test client: access, forms, CSRF, logs, languages.

The browser tests (``test_admin_browser.py``) walk the main paths in
Chromium; these cover the rest, down to crafted requests.
"""

from __future__ import annotations

import html
import re
import typing as t
from pathlib import Path

import pytest
from apps import make_site
from flask_admin import Admin
from flask_mail import Message
from helpers import AdminSite, make_admin_site

from flask_smtp_accounts.admin.forms import SETTINGS_META, setting_names
from flask_smtp_accounts.errors import InvalidSettingError
from flask_smtp_accounts.oauth2 import MICROSOFT_APP_SCOPE
from flask_smtp_accounts.settings import DEFAULT_SETTINGS, SETTING_NAMES
from flask_smtp_accounts.testing import LOGIN, PASSWORD, Certs, SMTPServer, free_port
from flask_smtp_accounts.testing.oauth import CLIENT_ID, CLIENT_SECRET, OAuthServer
from flask_smtp_accounts.validation import validate_settings

ADMIN = "/admin/smtp-accounts"
PAGES = (
    f"{ADMIN}/accounts/",
    f"{ADMIN}/accounts/new/",
    f"{ADMIN}/logs/",
    f"{ADMIN}/settings/",
    f"{ADMIN}/routing/",
)


@pytest.fixture
def client(admin_site: AdminSite) -> t.Any:
    """A test client logged in as the user with every permission."""
    client = admin_site.app.test_client()
    client.get("/test-login/admin")
    return client


# --- helpers ------------------------------------------------------------------


def csrf_token(page: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert match, "the page has no CSRF token"
    return match.group(1)


def text_of(page: str) -> str:
    """The visible text of a page, tags removed and entities decoded, spaces collapsed."""
    body = page[max(page.find("<body"), 0) :]
    body = re.sub(r"<script.*?</script>", " ", body, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body))).strip()


def password_value(page: str) -> str:
    """What the page puts into the password input (nothing, ever)."""
    tag = re.search(r'<input[^>]*name="new_password"[^>]*>', page)
    assert tag
    value = re.search(r'value="([^"]*)"', tag.group(0))
    return value.group(1) if value else ""


def get(client: t.Any, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, (url, response.status_code)
    return t.cast(str, response.get_data(as_text=True))


def account_form(server: SMTPServer, **fields: t.Any) -> dict[str, t.Any]:
    form = {
        "active": "y",
        "sender_name": "Hello",
        "sender_email": "hello@example.com",
        "host": server.host,
        "port": str(server.port),
        "security": {"none": "none", "starttls": "starttls", "ssl": "ssl"}[server.tls],
        "verify_tls": "y",
        "auth": "login" if server.credentials else "none",
        "login": LOGIN if server.credentials else "",
        "new_password": PASSWORD if server.credentials else "",
        "backup_ids": "",
    }
    form.update(fields)
    return {k: v for k, v in form.items() if v is not None}


def post_form(
    client: t.Any, url: str, data: dict[str, t.Any], *, form_url: str | None = None, **kwargs: t.Any
) -> t.Any:
    """POST ``data`` with the CSRF token of the page the form is on."""
    token = csrf_token(get(client, form_url or url))
    return client.post(url, data={**data, "csrf_token": token}, **kwargs)


def accounts(site: AdminSite) -> list[t.Any]:
    with site.app.app_context():
        return [
            a.to_info() for a in site.site.db.session.query(site.ext.Account).order_by(site.ext.Account.id)
        ]


def add(site: AdminSite, server: SMTPServer, **fields: t.Any) -> int:
    """An account saved through the Python API, without a check."""
    values = account_form(server, **fields)
    values["port"] = int(values["port"])
    values["active"] = values["active"] == "y"
    values["verify_tls"] = True
    password = values.pop("new_password") or None
    values.pop("backup_ids", None)
    with site.app.app_context():
        return int(site.ext.add_account(password=password, check=False, **values).id)


def settings(site: AdminSite) -> t.Any:
    with site.app.app_context():
        return site.ext.settings


def write_log(site: AdminSite, account_id: int, kind: str, text: str) -> Path:
    """A log file as the logs module names it (to test the pages on a big log without sending 300 KB)."""
    folder = Path(site.app.instance_path) / "smtp_logs"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{kind}_admin_smtp_{account_id}.log"
    path.write_text(text, encoding="utf-8")
    return path


# --- access -------------------------------------------------------------------


def test_without_an_access_rule_every_page_answers_403(
    tmp_path: Path, encryption_key: str, starttls_server: SMTPServer
) -> None:
    site = make_admin_site(
        tmp_path / "instance", access_rule=False, SMTP_ACCOUNTS_ENCRYPTION_KEYS=encryption_key
    )
    account_id = add(site, starttls_server)
    write_log(site, account_id, "check", "conversation\n")
    client = site.app.test_client()
    client.get("/test-login/admin")
    for url in (
        *PAGES,
        f"{ADMIN}/accounts/edit/?id={account_id}",
        f"{ADMIN}/accounts/test-letter/?id={account_id}",
        f"{ADMIN}/logs/{account_id}/check/",
        f"{ADMIN}/logs/{account_id}/check/download",
    ):
        assert client.get(url).status_code == 403, url
    for url in (
        f"{ADMIN}/accounts/delete/",
        f"{ADMIN}/accounts/action/",
        f"{ADMIN}/accounts/toggle-active/",
        f"{ADMIN}/settings/",
        f"{ADMIN}/logs/{account_id}/check/delete",
    ):
        assert (
            client.post(
                url, data={"id": account_id, "rowid": account_id, "action": "delete", "timeout_s": "99"}
            ).status_code
            == 403
        ), url
    assert [a.active for a in accounts(site)] == [True]
    assert settings(site).timeout_s == 10
    assert (Path(site.app.instance_path) / "smtp_logs" / f"check_admin_smtp_{account_id}.log").exists()


def test_without_flask_babel_the_error_says_what_to_do(tmp_path: Path, encryption_key: str) -> None:
    site = make_site(tmp_path / "instance", SMTP_ACCOUNTS_ENCRYPTION_KEYS=encryption_key)
    site.ext.init_admin(Admin(site.app))
    site.ext.access_rule(lambda permission: True)
    site.app.testing = True
    with pytest.raises(RuntimeError, match=r"need flask-babel on the app: call Babel\(app\)"):
        site.app.test_client().get(f"{ADMIN}/settings/")


def test_permissions_open_only_their_pages(admin_site: AdminSite, starttls_server: SMTPServer) -> None:
    account_id = add(admin_site, starttls_server)
    log = write_log(admin_site, account_id, "send", "a letter\n")
    anonymous = admin_site.app.test_client()
    for url in PAGES:
        assert anonymous.get(url).status_code == 403, url

    nobody = admin_site.app.test_client()
    nobody.get("/test-login/nobody")
    for url in PAGES:
        assert nobody.get(url).status_code == 403, url

    reader = admin_site.app.test_client()
    reader.get("/test-login/reader")
    page = get(reader, f"{ADMIN}/logs/")
    menu = text_of(page)
    assert "Sending logs" in menu and "SMTP accounts" not in menu and "Settings" not in menu
    assert "a letter" in get(reader, f"{ADMIN}/logs/{account_id}/send/")
    assert "Delete" not in text_of(page), "a reader is not offered deleting"
    for url in (f"{ADMIN}/accounts/", f"{ADMIN}/settings/", f"{ADMIN}/routing/"):
        assert reader.get(url).status_code == 403, url
    response = reader.post(f"{ADMIN}/logs/{account_id}/send/delete")
    assert response.status_code == 403, "refused for the permission (a missing token alone redirects)"
    assert log.exists()


# --- accounts -------------------------------------------------------------------


def test_creating_an_account_checks_it_then_saves_it(
    admin_site: AdminSite, client: t.Any, starttls_server: SMTPServer
) -> None:
    response = post_form(
        client, f"{ADMIN}/accounts/new/", account_form(starttls_server), follow_redirects=True
    )
    page = text_of(response.get_data(as_text=True))
    assert "The account passed the check." in page
    assert "Hello hello@example.com 127.0.0.1" in page
    [saved] = accounts(admin_site)
    assert (saved.sender_email, saved.host, saved.port, saved.security, saved.login) == (
        "hello@example.com",
        "127.0.0.1",
        starttls_server.port,
        "starttls",
        LOGIN,
    )
    assert [a.login for a in starttls_server.auth_attempts if a.success] == [LOGIN]
    log = get(client, f"{ADMIN}/logs/0/check/")
    assert "235" in log, "the check of the unsaved account went to the check log of id 0"


def test_a_wrong_password_names_the_login_stage_and_nothing_is_saved(
    admin_site: AdminSite, client: t.Any, starttls_server: SMTPServer
) -> None:
    response = post_form(
        client, f"{ADMIN}/accounts/new/", account_form(starttls_server, new_password="not-the-password")
    )
    assert response.status_code == 200
    source = response.get_data(as_text=True)
    page = text_of(source)
    assert "The account was not saved. The check failed at the login stage." in page
    assert "The server replied: 535" in page
    assert accounts(admin_site) == []
    assert "not-the-password" not in source
    assert 'value="hello@example.com"' in source and f'value="{starttls_server.port}"' in source
    assert password_value(source) == ""


def test_an_unreachable_server_names_the_connect_stage(
    admin_site: AdminSite, client: t.Any, starttls_server: SMTPServer
) -> None:
    response = post_form(
        client, f"{ADMIN}/accounts/new/", account_form(starttls_server, port=str(free_port()))
    )
    assert "The check failed at the connection stage" in text_of(response.get_data(as_text=True))
    assert accounts(admin_site) == []


def test_a_bad_field_is_marked_and_no_server_is_asked(
    admin_site: AdminSite, client: t.Any, starttls_server: SMTPServer
) -> None:
    response = post_form(
        client, f"{ADMIN}/accounts/new/", account_form(starttls_server, sender_email="not an address")
    )
    source = response.get_data(as_text=True)
    field = source[source.index('id="sender_email"') - 200 : source.index('id="sender_email"') + 600]
    assert "is-invalid" in field and "Enter a valid email address." in field
    assert accounts(admin_site) == []
    assert starttls_server.auth_attempts == []


def test_with_send_test_on_check_saving_sends_a_test_letter(
    admin_site: AdminSite, client: t.Any, starttls_server: SMTPServer
) -> None:
    with admin_site.app.app_context():
        admin_site.ext.update_settings(send_test_on_check=True, test_recipient="postmaster@example.org")
    form_page = text_of(get(client, f"{ADMIN}/accounts/new/"))
    assert "sends a test letter to postmaster@example.org" in form_page
    post_form(client, f"{ADMIN}/accounts/new/", account_form(starttls_server))
    [letter] = starttls_server.wait_for(1)
    assert letter.rcpt_tos == ["postmaster@example.org"] and letter.login == LOGIN
    assert len(accounts(admin_site)) == 1


def test_editing_with_a_blank_password_keeps_the_stored_one(
    admin_site: AdminSite, client: t.Any, starttls_server: SMTPServer
) -> None:
    account_id = add(admin_site, starttls_server, sender_name="Old name")
    url = f"{ADMIN}/accounts/edit/?id={account_id}"
    response = post_form(
        client,
        url,
        account_form(starttls_server, sender_name="New name", new_password=""),
        follow_redirects=True,
    )
    assert "The account passed the check." in text_of(response.get_data(as_text=True))
    assert accounts(admin_site)[0].sender_name == "New name"
    with admin_site.app.app_context():
        admin_site.site.mail.send(
            Message("Hi", sender="hello@example.com", recipients=["bob@example.org"], body="x")
        )
    got = starttls_server.wait_for(1)[-1]
    assert got.login == LOGIN and got.rcpt_tos == ["bob@example.org"]
    assert got.message["From"] == "New name <hello@example.com>"


def test_the_password_never_reaches_the_page(
    admin_site: AdminSite, client: t.Any, starttls_server: SMTPServer
) -> None:
    account_id = add(admin_site, starttls_server)
    with admin_site.app.app_context():
        ciphertext = admin_site.ext.get_account(account_id).password_encrypted
    for url in (
        f"{ADMIN}/accounts/",
        f"{ADMIN}/accounts/edit/?id={account_id}",
        f"{ADMIN}/accounts/test-letter/?id={account_id}",
    ):
        source = get(client, url)
        assert PASSWORD not in source and ciphertext not in source and ciphertext[:20] not in source, url
    edit = get(client, f"{ADMIN}/accounts/edit/?id={account_id}")
    assert password_value(edit) == ""
    assert "leave it blank to keep the stored password" in text_of(edit)


def test_an_oauth2_account_is_checked_and_its_secrets_never_shown(
    admin_site: AdminSite, client: t.Any, certs: Certs
) -> None:
    with (
        OAuthServer() as provider,
        SMTPServer(
            tls="starttls", cert=(certs.server_cert, certs.server_key), xoauth2=provider.xoauth2
        ) as server,
    ):
        form = account_form(
            server,
            auth="oauth2",
            login=LOGIN,
            oauth_provider="custom",
            oauth_flow="app",
            oauth_tenant="",
            oauth_token_url=provider.token_url,
            oauth_scope=MICROSOFT_APP_SCOPE,
            oauth_client_id=CLIENT_ID,
            oauth_client_secret="not-the-secret",
            oauth_refresh_token="",
            oauth_authorize_url="",
        )
        source = post_form(client, f"{ADMIN}/accounts/new/", form).get_data(as_text=True)
        assert "The account was not saved. The check failed at the access token stage" in text_of(source)
        assert "not-the-secret" not in source and accounts(admin_site) == []

        response = post_form(
            client,
            f"{ADMIN}/accounts/new/",
            {**form, "oauth_client_secret": CLIENT_SECRET},
            follow_redirects=True,
        )
        assert "The account passed the check." in text_of(response.get_data(as_text=True))
        [saved] = accounts(admin_site)
        assert (saved.auth, saved.oauth_provider, saved.oauth_client_id) == ("oauth2", "custom", CLIENT_ID)

        edit_url = f"{ADMIN}/accounts/edit/?id={saved.id}"
        edit = get(client, edit_url)
        assert CLIENT_SECRET not in edit and saved.oauth_client_secret_encrypted[:20] not in edit
        assert 'name="oauth_client_secret" type="password" value=""' in edit
        response = post_form(
            client,
            edit_url,
            {**form, "oauth_client_secret": "", "sender_name": "Via OAuth2"},
            follow_redirects=True,
        )
        assert "The account passed the check." in text_of(response.get_data(as_text=True))
        assert accounts(admin_site)[0].sender_name == "Via OAuth2"


def test_the_list_shows_20_a_page_searches_and_sorts(
    admin_site: AdminSite, client: t.Any, smtp_server: SMTPServer
) -> None:
    for number in range(25):
        add(
            admin_site,
            smtp_server,
            sender_email=f"user{number:02}@example.com",
            sender_name=f"Name {number:02}",
        )
    add(admin_site, smtp_server, sender_email="alice@example.net", sender_name="Marketing")
    first = get(client, f"{ADMIN}/accounts/")
    header = text_of(first[first.index("<thead") : first.index("</thead>")])
    assert header.split() == [
        "ID",
        "Active",
        "Sender",
        "name",
        "Email",
        "Server",
        "Port",
        "Security",
        "Authorization",
        "Carries",
        "Today",
    ]
    assert first.count('name="rowid"') == 20
    assert get(client, f"{ADMIN}/accounts/?page=1").count('name="rowid"') == 6
    found = get(client, f"{ADMIN}/accounts/?search=alice")
    assert found.count('name="rowid"') == 1 and "alice@example.net" in found
    assert get(client, f"{ADMIN}/accounts/?search=Marketing").count('name="rowid"') == 1
    by_email_desc = text_of(get(client, f"{ADMIN}/accounts/?sort=3&desc=1"))
    assert by_email_desc.index("user24@example.com") < by_email_desc.index("user23@example.com")
    assert "alice@example.net" not in by_email_desc, "alice sorts last: on page 2"


def test_toggle_active_and_bulk_actions(
    admin_site: AdminSite, client: t.Any, smtp_server: SMTPServer
) -> None:
    ids = [add(admin_site, smtp_server, sender_email=f"u{n}@example.com") for n in range(3)]
    list_url = f"{ADMIN}/accounts/"
    token = csrf_token(get(client, list_url))
    client.post(f"{ADMIN}/accounts/toggle-active/", data={"id": ids[0], "csrf_token": token})
    assert [a.active for a in accounts(admin_site)] == [False, True, True]
    assert 'title="Inactive: click to activate"' in get(client, list_url)
    client.post(
        f"{ADMIN}/accounts/action/", data={"action": "deactivate", "rowid": ids[1:], "csrf_token": token}
    )
    assert [a.active for a in accounts(admin_site)] == [False, False, False]
    client.post(
        f"{ADMIN}/accounts/action/", data={"action": "activate", "rowid": ids[:2], "csrf_token": token}
    )
    assert [a.active for a in accounts(admin_site)] == [True, True, False]
    client.post(f"{ADMIN}/accounts/action/", data={"action": "delete", "rowid": ids[:2], "csrf_token": token})
    assert [a.id for a in accounts(admin_site)] == [ids[2]]
    client.post(f"{ADMIN}/accounts/delete/", data={"id": ids[2], "csrf_token": token})
    assert accounts(admin_site) == []


def test_posts_without_a_csrf_token_change_nothing(
    admin_site: AdminSite, client: t.Any, starttls_server: SMTPServer
) -> None:
    account_id = add(admin_site, starttls_server)
    log = write_log(admin_site, account_id, "check", "kept\n")
    before = accounts(admin_site)
    responses = [
        client.post(
            f"{ADMIN}/accounts/new/", data=account_form(starttls_server, sender_email="new@example.com")
        ),
        client.post(
            f"{ADMIN}/accounts/edit/?id={account_id}",
            data=account_form(starttls_server, sender_name="Changed"),
        ),
        client.post(f"{ADMIN}/accounts/delete/", data={"id": account_id}),
        client.post(f"{ADMIN}/accounts/action/", data={"action": "delete", "rowid": account_id}),
        client.post(f"{ADMIN}/accounts/toggle-active/", data={"id": account_id}),
        client.post(f"{ADMIN}/accounts/test-letter/?id={account_id}", data={"recipient": "bob@example.org"}),
        client.post(f"{ADMIN}/logs/{account_id}/check/delete"),
        client.post(f"{ADMIN}/accounts/new/", data={**account_form(starttls_server), "csrf_token": "forged"}),
    ]
    assert all(r.status_code in (200, 302) for r in responses)
    assert accounts(admin_site) == before
    assert settings(admin_site).timeout_s == 10
    assert log.read_text() == "kept\n"
    assert starttls_server.received == []
    refused = client.post(f"{ADMIN}/settings/", data={"timeout_s": "99", "enabled": "y"})
    assert "The request was refused: the form lacked its security token. Nothing was changed." in text_of(
        refused.get_data(as_text=True)
    )
    assert settings(admin_site).timeout_s == 10


# --- test letter ----------------------------------------------------------------


def test_a_test_letter_goes_to_the_typed_address(
    admin_site: AdminSite, client: t.Any, starttls_server: SMTPServer
) -> None:
    with admin_site.app.app_context():
        admin_site.ext.update_settings(test_recipient="default@example.org")
    account_id = add(admin_site, starttls_server)
    url = f"{ADMIN}/accounts/test-letter/?id={account_id}"
    form = get(client, url)
    assert 'value="default@example.org"' in form
    assert f'href="{url}' in get(client, f"{ADMIN}/accounts/").replace("&amp;", "&"), (
        "a row action of the list"
    )
    assert f"test-letter/?id={account_id}" in get(client, f"{ADMIN}/accounts/edit/?id={account_id}"), (
        "a link on the form"
    )
    response = client.post(url, data={"recipient": "typed@example.org", "csrf_token": csrf_token(form)})
    page = text_of(response.get_data(as_text=True))
    [letter] = starttls_server.wait_for(1)
    assert letter.rcpt_tos == ["typed@example.org"]
    assert f"The server accepted the test letter. Message-ID: {letter.message_id}" in page


def test_a_refused_test_letter_shows_the_reply(
    admin_site: AdminSite, client: t.Any, make_smtp_server: t.Any
) -> None:
    class RefuseRecipient:
        async def handle_RCPT(self, *args: t.Any) -> str:  # noqa: N802 - aiosmtpd's name
            return "550 5.1.1 No such mailbox here"

    server = make_smtp_server(handler_hooks=RefuseRecipient())
    account_id = add(admin_site, server)
    url = f"{ADMIN}/accounts/test-letter/?id={account_id}"
    response = post_form(client, url, {"recipient": "nobody@example.org"})
    page = text_of(response.get_data(as_text=True))
    assert (
        "The check failed at the test letter stage. The server replied: 550 5.1.1 No such mailbox here"
        in page
    )


# --- settings -------------------------------------------------------------------


def test_the_settings_page_shows_every_setting_with_default_and_help(client: t.Any) -> None:
    source = get(client, f"{ADMIN}/settings/")
    assert set(setting_names()) == set(SETTING_NAMES)
    assert set(SETTING_NAMES) <= set(SETTINGS_META), "every setting has a label, help and unit on the page"
    blocks = {
        m.group(1): text_of("<body>" + m.group(2))
        for m in re.finditer(
            r'id="setting-(\w+)">(.*?)(?=<div class="form-group row sa-setting"|</fieldset>)', source, re.S
        )
    }
    assert set(blocks) == set(SETTING_NAMES)
    for name, block in blocks.items():
        label, help_text = SETTINGS_META[name].label, SETTINGS_META[name].help
        assert block.startswith(str(label)) and str(help_text) in block and "Default: " in block, name
    page = text_of(source)
    assert "Connection timeout s Limit for a connection check" in page
    assert (
        "Default: 10 s" in page
        and "Default: 10 MB" in page
        and "Default: 2: client and server messages" in page
    )
    assert "Default: day" in page and "Default: off" in page


@pytest.mark.one_database
def test_the_page_ranges_are_the_validation_ranges() -> None:
    for name, meta in SETTINGS_META.items():
        if meta.kind != "int" or name not in SETTING_NAMES:
            continue
        assert meta.low is not None and meta.high is not None, name
        validate_settings({name: meta.low})
        validate_settings({name: meta.high})
        for outside in (meta.low - 1, meta.high + 1):
            with pytest.raises(InvalidSettingError):
                validate_settings({name: outside})


def settings_form(**changes: t.Any) -> dict[str, t.Any]:
    """The settings form as a browser posts it: the defaults, then ``changes``."""
    values = {name: getattr(DEFAULT_SETTINGS, name) for name in SETTING_NAMES}
    values.update(changes)
    return {
        name: ("y" if value else None) if isinstance(value, bool) else str(value)
        for name, value in values.items()
        if value is not False
    }


def test_bad_settings_are_marked_and_nothing_is_saved(admin_site: AdminSite, client: t.Any) -> None:
    bad = settings_form(
        enabled=True, log_level="7", log_rewrite_period="week", max_log_size_mb="2000", timeout_s="0"
    )
    source = post_form(client, f"{ADMIN}/settings/", bad).get_data(as_text=True)
    errors = re.findall(r'<div class="text-danger small sa-field-error">(.*?)</div>', source)
    assert errors == [
        "Choose one of the listed options.",
        "A whole number from 0 to 1024 (MB).",
        "A whole number from 1 to 300 (s).",
    ]
    assert "The settings were not saved" in text_of(source)
    assert 'value="2000"' in source, "the typed values come back"
    assert settings(admin_site).log_rewrite_period == "day"

    good = settings_form(
        enabled=True,
        log_level="3",
        log_rewrite_period="week",
        max_log_size_mb="0",
        timeout_s="300",
        test_recipient="admin@example.org",
    )
    response = post_form(client, f"{ADMIN}/settings/", good, follow_redirects=True)
    assert "The settings were saved." in text_of(response.get_data(as_text=True))
    saved = settings(admin_site)
    assert (
        saved.log_level,
        saved.max_log_size_mb,
        saved.timeout_s,
        saved.log_rewrite_period,
        saved.test_recipient,
    ) == (3, 0, 300, "week", "admin@example.org")
    assert saved.enabled is True and saved.send_test_on_check is False


def test_until_enabled_the_accounts_and_logs_pages_say_so(tmp_path: Path, encryption_key: str) -> None:
    site = make_admin_site(tmp_path / "instance", enabled=False, SMTP_ACCOUNTS_ENCRYPTION_KEYS=encryption_key)
    client = site.app.test_client()
    client.get("/test-login/admin")
    notice = "Sending mail through SMTP accounts is switched off"
    for url in (f"{ADMIN}/accounts/", f"{ADMIN}/logs/"):
        source = get(client, url)
        assert notice in text_of(source)
        assert f'href="{ADMIN}/settings/" class="alert-link"' in source
    with site.app.app_context():
        site.ext.update_settings(enabled=True)
    assert notice not in text_of(get(client, f"{ADMIN}/accounts/"))


# --- routing preview ------------------------------------------------------------


def test_the_preview_names_the_account_and_the_rule(
    admin_site: AdminSite, client: t.Any, smtp_server: SMTPServer
) -> None:
    marketing = add(admin_site, smtp_server, sender_email="hello@example.com", sender_name="Marketing")
    plain = add(admin_site, smtp_server, sender_email="hello@example.com", sender_name="")
    url = f"{ADMIN}/routing/"

    page = text_of(post_form(client, url, {"sender": "Hello@Example.com"}).get_data(as_text=True))
    assert f"Account {plain}: hello@example.com" in page
    assert "Rule: the active account with this email and the largest ID" in page
    assert f"Matching active accounts: {plain}, {marketing}" in page

    page = text_of(
        post_form(client, url, {"sender": "Marketing <hello@example.com>", "bulk": "y"}).get_data(
            as_text=True
        )
    )
    assert f"Account {marketing}: Marketing <hello@example.com>" in page
    assert "Rule: bulk letter: the account's sender name equals the letter's display name" in page

    page = text_of(post_form(client, url, {"sender": "other@example.com"}).get_data(as_text=True))
    assert "Flask-Mail's own settings (MAIL_SERVER)" in page and "no active account has this email" in page


# --- logs -----------------------------------------------------------------------


def test_the_log_list_names_mailbox_file_size_and_date(
    admin_site: AdminSite, client: t.Any, starttls_server: SMTPServer
) -> None:
    account_id = add(admin_site, starttls_server, sender_name="Hello")
    write_log(admin_site, account_id, "send", "x" * 2048)
    write_log(admin_site, 0, "check", "y" * 10)
    write_log(admin_site, 99, "send", "z")
    (Path(admin_site.app.instance_path) / "smtp_logs" / "notes.txt").write_text("not a log")
    source = get(client, f"{ADMIN}/logs/")
    rows = [text_of("<body>" + row) for row in re.findall(r'<tr class="sa-log-row".*?</tr>', source, re.S)]
    assert len(rows) == 3
    assert rows[0].startswith("New account (checks) check_admin_smtp_0.log 10 B")
    assert rows[1].startswith(f"Hello <hello@example.com> (sending) send_admin_smtp_{account_id}.log 2 KB")
    assert rows[2].startswith("Account 99 (deleted) (sending) send_admin_smtp_99.log 1 B")
    assert all("View" in row and "Download" in row and "Delete" in row for row in rows)


def _first(pattern: str, source: str, flags: int = 0) -> str:
    """Group 1 of the first match of ``pattern`` in ``source``; the test fails when there is none."""
    match = re.search(pattern, source, flags)
    assert match is not None, pattern
    return match.group(1)


def test_a_large_log_is_shown_a_page_at_a_time_newest_first(admin_site: AdminSite, client: t.Any) -> None:
    lines = [f"line {n:06} of the conversation\n" for n in range(12000)]
    content = "".join(lines)
    assert len(content) > 300_000
    write_log(admin_site, 7, "send", content)
    first = client.get(f"{ADMIN}/logs/7/send/")
    source = first.get_data(as_text=True)
    assert len(first.data) < 100_000
    shown = html.unescape(_first(r"<pre[^>]*sa-log-text[^>]*>(.*?)</pre>", source, re.S))
    assert shown.endswith("line 011999 of the conversation\n") and "line 000000" not in shown
    assert f"of {len(content)}" in text_of(source)
    older = html.unescape(_first(r'class="page-link sa-page-older" href="([^"]+)"', source))
    older_page = get(client, older)
    older_text = html.unescape(_first(r"<pre[^>]*>(.*?)</pre>", older_page, re.S))
    assert content.index(older_text) + len(older_text) == content.index(shown), (
        "the older page ends where the newer begins"
    )
    oldest = html.unescape(_first(r'class="page-link sa-page-oldest" href="([^"]+)"', source))
    assert "line 000000" in get(client, oldest)
    with client.get(f"{ADMIN}/logs/7/send/download") as download:
        assert download.headers["Content-Disposition"] == "attachment; filename=send_admin_smtp_7.log"
        assert download.get_data(as_text=True) == content


def test_deleting_a_log(admin_site: AdminSite, client: t.Any) -> None:
    log = write_log(admin_site, 3, "check", "old\n")
    other = write_log(admin_site, 3, "send", "stays\n")
    response = post_form(
        client, f"{ADMIN}/logs/3/check/delete", {}, form_url=f"{ADMIN}/logs/", follow_redirects=True
    )
    assert "The log check_admin_smtp_3.log was deleted." in text_of(response.get_data(as_text=True))
    assert not log.exists() and other.exists()


@pytest.mark.parametrize(
    "path",
    [
        "-1/check/",
        "0/..%2F..%2Fsecret.txt/",
        "0/check%2F..%2F..%2Fsecret.txt/",
        "0/../../secret.txt/",
        "0/secret.txt/",
        "0/CHECK/",
        "0/send.log/",
        "%2E%2E/check/",
        "1e3/check/",
        "0x1/check/",
        "0/check/download/../../../secret.txt",
    ],
)
def test_crafted_log_urls_reach_no_other_file(admin_site: AdminSite, client: t.Any, path: str) -> None:
    secret = Path(admin_site.app.instance_path) / "secret.txt"
    secret.write_text("top secret\n")
    write_log(admin_site, 0, "check", "a log\n")
    token = csrf_token(get(client, f"{ADMIN}/logs/"))
    for url in (f"{ADMIN}/logs/{path}", f"{ADMIN}/logs/{path}download"):
        with client.get(url) as response:
            assert response.status_code in (302, 404, 405), (url, response.status_code)
            assert b"top secret" not in response.data
    response = client.post(f"{ADMIN}/logs/{path}delete", data={"csrf_token": token})
    assert response.status_code in (302, 404, 405)
    assert secret.read_text() == "top secret\n"
    assert "a log" in get(client, f"{ADMIN}/logs/0/check/")


# --- languages and templates ----------------------------------------------------


def test_pages_follow_the_sites_locale(
    admin_site: AdminSite, client: t.Any, starttls_server: SMTPServer
) -> None:
    client.set_cookie("lang", "ru")
    page = text_of(get(client, f"{ADMIN}/settings/"))
    assert "Почта через SMTP" in page and "Таймаут соединения" in page and "По умолчанию: 10 с" in page
    response = post_form(
        client, f"{ADMIN}/accounts/new/", account_form(starttls_server, new_password="wrong")
    )
    source = response.get_data(as_text=True)
    page = text_of(source)
    assert "Учётная запись не сохранена. Проверка не прошла на этапе «вход». Ответ сервера: 535" in page
    assert "Имя отправителя" in page and 'value="Сохранить"' in source
    client.set_cookie("lang", "en")
    assert "Connection timeout" in text_of(get(client, f"{ADMIN}/settings/"))


def test_a_site_template_overrides_the_packaged_one(tmp_path: Path, encryption_key: str) -> None:
    site = make_admin_site(tmp_path / "instance", SMTP_ACCOUNTS_ENCRYPTION_KEYS=encryption_key)
    folder = tmp_path / "templates" / "smtp_accounts"
    folder.mkdir(parents=True)
    (folder / "preview.html").write_text(
        "{% extends 'admin/master.html' %}{% block body %}The site's own preview{% endblock %}"
    )
    site.app.template_folder = str(tmp_path / "templates")
    client = site.app.test_client()
    client.get("/test-login/admin")
    assert "The site's own preview" in get(client, f"{ADMIN}/routing/")
    assert "Connection timeout" in get(client, f"{ADMIN}/settings/")


@pytest.mark.one_database
def test_both_catalogues_are_complete_and_compiled() -> None:
    """Every string marked in the admin's code and templates is in both catalogues, translated into Russian.

    To update them, see the commands at the top of ``babel.cfg``.
    """
    import gettext

    from babel.messages.extract import extract_from_dir
    from babel.messages.frontend import parse_mapping_cfg
    from babel.messages.pofile import read_po

    root = Path(__file__).resolve().parent.parent
    with open(root / "babel.cfg") as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    keywords = {"_": None, "gettext": None, "_l": None, "_sa": None}
    # No keyword here takes plural forms, so each message id is one string.
    marked = {
        t.cast(str, message[2])
        for message in extract_from_dir(str(root), method_map, options_map, keywords=keywords)
    }
    assert len(marked) > 100
    folder = root / "flask_smtp_accounts" / "translations"
    for lang in ("ru", "en"):
        with open(folder / lang / "LC_MESSAGES" / "smtp_accounts.po", "rb") as po:
            catalog = read_po(po, locale=lang)
        strings = {m.id: m.string for m in catalog if m.id and not m.fuzzy}
        assert marked <= set(strings), (lang, marked - set(strings))
        if lang == "ru":
            assert [msgid for msgid in marked if not strings[msgid]] == [], "untranslated in Russian"
        with open(folder / lang / "LC_MESSAGES" / "smtp_accounts.mo", "rb") as mo:
            compiled = gettext.GNUTranslations(mo)
        stale = [msgid for msgid in marked if compiled.gettext(msgid) != (strings[msgid] or msgid)]
        assert stale == [], f"{lang}: the .mo is older than the .po (pybabel compile)"
    with open(folder / "ru" / "LC_MESSAGES" / "smtp_accounts.po", "rb") as po:
        russian = {t.cast(str, m.id): m.string for m in read_po(po, locale="ru") if m.id}
    untranslated = [
        msgid
        for msgid in marked
        if russian[msgid] == msgid
        and re.search(r"[a-z]{3}", msgid)
        and msgid
        not in {"Email", "Message-ID: %(id)s", "STARTTLS (TLS)", "Microsoft 365", "Google", "OAuth2"}
    ]
    assert untranslated == []
