"""The admin pages in a real browser: Debian's Chromium driven by Playwright.

The site runs on 127.0.0.1 in a thread, with real aiosmtpd servers. If
Chromium cannot start, these tests fail; they are never skipped.
"""

from __future__ import annotations

import json
import typing as t
from pathlib import Path

import pytest
from browser import fill_account_form, flashes, login, new_context, submit
from flask_mail import Message
from helpers import AdminSite, LiveServer
from playwright.sync_api import Browser, Page

from flask_smtp_accounts.testing import LOGIN, PASSWORD, HangingServer, SMTPServer

pytestmark = pytest.mark.browser

ADMIN = "/admin/smtp-accounts"


@pytest.fixture
def live(admin_site: AdminSite) -> t.Iterator[LiveServer]:
    with LiveServer(admin_site.app) as server:
        yield server


@pytest.fixture
def page(browser: Browser, live: LiveServer) -> t.Iterator[Page]:
    """A page of a fresh profile, logged in as the user with every permission."""
    context = new_context(browser, live.url)
    page = context.new_page()
    login(page, "admin")
    yield page
    context.close()


def accounts(site: AdminSite) -> list[t.Any]:
    with site.app.app_context():
        return [
            a.to_info() for a in site.site.db.session.query(site.ext.Account).order_by(site.ext.Account.id)
        ]


def add(site: AdminSite, server: SMTPServer, **fields: t.Any) -> int:
    values = {
        "sender_email": "hello@example.com",
        "host": server.host,
        "port": server.port,
        "security": "starttls",
        "auth": "login",
        "login": LOGIN,
        **fields,
    }
    with site.app.app_context():
        return int(site.ext.add_account(password=PASSWORD, check=False, **values).id)


def new_account(page: Page, server: SMTPServer, password: str) -> None:
    page.goto(f"{ADMIN}/accounts/")
    page.click("text=Create")
    fill_account_form(
        page,
        sender_name="Test mail",
        sender_email="test@example.com",
        host=server.host,
        port=server.port,
        security="starttls",
        auth="login",
        login=LOGIN,
        new_password=password,
    )
    submit(page, "input[type=submit][value=Save]")


def test_an_account_that_passes_the_check_is_saved(
    page: Page, admin_site: AdminSite, starttls_server: SMTPServer
) -> None:
    new_account(page, starttls_server, PASSWORD)
    assert "The account passed the check." in flashes(page)[0]
    row = page.locator("table.model-list tbody tr, table.model-list tr:has(td)").first
    assert "test@example.com" in row.inner_text() and str(starttls_server.port) in row.inner_text()
    [saved] = accounts(admin_site)
    assert (saved.sender_name, saved.sender_email, saved.login) == ("Test mail", "test@example.com", LOGIN)


def test_a_wrong_password_shows_the_login_error_and_saves_nothing(
    page: Page, admin_site: AdminSite, starttls_server: SMTPServer
) -> None:
    new_account(page, starttls_server, "wrong password")
    message = " ".join(flashes(page))
    assert (
        "The account was not saved. The check failed at the login stage. The server replied: 535" in message
    )
    assert page.input_value("#sender_email") == "test@example.com", "the admin's input comes back"
    assert page.input_value("#new_password") == "", "the password is not echoed"
    assert "wrong password" not in page.content()
    assert accounts(admin_site) == []


def test_the_form_shows_that_the_check_is_running(page: Page, admin_site: AdminSite) -> None:
    with admin_site.app.app_context():
        admin_site.ext.update_settings(timeout_s=60)  # the check waits on the silent server until it hangs up
    with HangingServer() as silent:
        page.goto(f"{ADMIN}/accounts/new/")
        fill_account_form(
            page,
            sender_email="test@example.com",
            host=silent.host,
            port=silent.port,
            security="none",
            auth="none",
        )
        assert (
            page.locator(".sa-checking").is_hidden()
            and page.locator("input[type=submit][value=Save]").is_enabled()
        )
        # While the browser waits for the answer it no longer lets a test read the page: the page reports
        # what it shows, through the console, when the form changes.
        page.evaluate("""() => new MutationObserver(() => {
            const status = document.querySelector('.sa-checking');
            const buttons = [...document.querySelectorAll('form.admin-form [type=submit]')];
            console.log(JSON.stringify({status: status.innerText, enabled: buttons.filter(b => !b.disabled).length}));
        }).observe(document.querySelector('form.admin-form'), {attributes: true, subtree: true})""")

        with page.expect_console_message(lambda message: message.text.startswith("{")) as report:
            page.click("input[type=submit][value=Save]", no_wait_after=True)

        assert json.loads(report.value.text) == {
            "status": "Checking the connection to the server…",
            "enabled": 0,
        }
        with page.expect_navigation():
            silent.stop()  # hangs up on the check: the form comes back with the refusal

    assert "The account was not saved." in " ".join(flashes(page))
    assert (
        page.locator(".sa-checking").is_hidden()
        and page.locator("input[type=submit][value=Save]").is_enabled()
    )
    assert accounts(admin_site) == []


def test_editing_with_a_blank_password_still_sends(
    page: Page, admin_site: AdminSite, starttls_server: SMTPServer
) -> None:
    account_id = add(admin_site, starttls_server, sender_name="Old name")
    page.goto(f"{ADMIN}/accounts/")
    page.click(f"a[href*='edit/?id={account_id}']")
    assert page.input_value("#new_password") == ""
    fill_account_form(page, sender_name="New name")
    submit(page, "input[type=submit][value=Save]")
    assert "The account passed the check." in flashes(page)[0]
    assert "New name" in page.locator("table.model-list").inner_text()
    with admin_site.app.app_context():
        admin_site.site.mail.send(
            Message("Hi", sender="hello@example.com", recipients=["bob@example.org"], body="x")
        )
    letter = starttls_server.wait_for(1)[-1]
    assert letter.login == LOGIN and letter.message["From"] == "New name <hello@example.com>"


def test_sending_a_test_letter_from_the_list(
    page: Page, admin_site: AdminSite, starttls_server: SMTPServer
) -> None:
    with admin_site.app.app_context():
        admin_site.ext.update_settings(test_recipient="postmaster@example.org")
    account_id = add(admin_site, starttls_server)
    page.goto(f"{ADMIN}/accounts/")
    page.click(f"a[title='Send a test letter'][href*='id={account_id}']")
    assert page.input_value("#recipient") == "postmaster@example.org"
    page.fill("#recipient", "typed@example.org")
    submit(page, "button:text('Send the test letter')")
    result = page.locator(".sa-result").inner_text()
    [letter] = starttls_server.wait_for(1)
    assert letter.rcpt_tos == ["typed@example.org"]
    assert "The server accepted the test letter." in result
    assert letter.message_id is not None and letter.message_id in result


def test_viewing_and_deleting_a_log(page: Page, admin_site: AdminSite, starttls_server: SMTPServer) -> None:
    account_id = add(admin_site, starttls_server, sender_name="Test mail", sender_email="test@example.com")
    with admin_site.app.app_context():
        assert admin_site.ext.check_account(admin_site.ext.get_account(account_id)).ok
    page.goto(f"{ADMIN}/logs/")
    row = page.locator("tr.sa-log-row", has_text=f"check_admin_smtp_{account_id}.log")
    assert row.locator(".sa-mailbox").inner_text() == "Test mail <test@example.com> (checks)"
    row.locator(f"a:text('check_admin_smtp_{account_id}.log')").click()
    log_text = page.locator(".sa-log-text").inner_text()
    assert "235" in log_text and PASSWORD not in log_text
    page.once("dialog", lambda dialog: dialog.accept())
    submit(page, "form.sa-delete-log button")
    assert f"The log check_admin_smtp_{account_id}.log was deleted." in " ".join(flashes(page))
    assert page.locator("tr.sa-log-row", has_text=f"check_admin_smtp_{account_id}.log").count() == 0
    assert not (
        Path(admin_site.app.instance_path) / "smtp_logs" / f"check_admin_smtp_{account_id}.log"
    ).exists()


def test_changing_a_setting(page: Page, admin_site: AdminSite) -> None:
    page.goto(f"{ADMIN}/settings/")
    assert "Default: 10 s" in page.locator("#setting-timeout_s").inner_text()
    page.fill("#timeout_s", "30")
    page.select_option("#log_level", "3")
    submit(page, "button:text('Save')")
    assert "The settings were saved." in flashes(page)[0]
    assert page.input_value("#timeout_s") == "30"
    with admin_site.app.app_context():
        assert (admin_site.ext.settings.timeout_s, admin_site.ext.settings.log_level) == (30, 3)


def test_a_user_without_rights_gets_403(browser: Browser, live: LiveServer) -> None:
    context = new_context(browser, live.url)
    try:
        page = context.new_page()
        login(page, "nobody")
        for url in (f"{ADMIN}/accounts/", f"{ADMIN}/settings/", f"{ADMIN}/logs/", f"{ADMIN}/routing/"):
            response = page.goto(url)
            assert response is not None and response.status == 403, url
            assert page.locator("h1").inner_text() == "You may not open this page", url
    finally:
        context.close()


def test_a_form_posted_without_its_csrf_token_is_refused(
    page: Page, admin_site: AdminSite, starttls_server: SMTPServer
) -> None:
    page.goto(f"{ADMIN}/accounts/new/")
    fill_account_form(
        page,
        sender_email="test@example.com",
        host=starttls_server.host,
        port=starttls_server.port,
        login=LOGIN,
        new_password=PASSWORD,
    )
    page.evaluate("document.querySelector('input[name=csrf_token]').remove()")
    submit(page, "input[type=submit][value=Save]")
    assert "The request was refused: the form lacked its security token. Nothing was changed." in flashes(
        page
    )
    assert accounts(admin_site) == []

    page.goto(f"{ADMIN}/settings/")
    page.fill("#timeout_s", "99")
    page.evaluate("document.querySelector('input[name=csrf_token]').remove()")
    submit(page, "button:text('Save')")
    assert "The request was refused: the form lacked its security token. Nothing was changed." in flashes(
        page
    )
    with admin_site.app.app_context():
        assert admin_site.ext.settings.timeout_s == 10


def test_the_readme_screenshots_come_from_the_real_pages(browser: Browser, tmp_path: Path) -> None:
    from browser import take_screenshots

    shots = take_screenshots(tmp_path, browser)
    assert [shot.name for shot in shots] == [
        "dashboard.png",
        "alerts.png",
        "accounts-list.png",
        "account-form.png",
        "settings.png",
        "logs-list.png",
        "account-preset.png",
        "message-log.png",
        "routing-preview.png",
    ]
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    for shot in shots:
        assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 10_000
        assert f"docs/screenshots/{shot.name}" in readme
