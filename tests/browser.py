"""Playwright helpers: Debian's Chromium, driven headless, never downloaded.

The browser tests use :func:`launch_chromium`; if Chromium cannot start, the
error propagates and the test fails (it is never skipped).

Run as a script to refresh the README's screenshots::

    python tests/browser.py docs/screenshots
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import typing as t
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, Page, Playwright, ViewportSize, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}


def launch_chromium(playwright: Playwright) -> Browser:
    """Debian's Chromium, headless. Raises with the reason when it cannot start."""
    if not Path(CHROMIUM).exists():
        raise RuntimeError(
            f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)."
        )
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def new_context(browser: Browser, base_url: str, *, lang: str = "en") -> BrowserContext:
    """A fresh browser profile for one test: no cookies, the site's language cookie set."""
    context = browser.new_context(base_url=base_url, viewport=VIEWPORT, locale=lang)
    context.add_cookies([{"name": "lang", "value": lang, "url": base_url}])
    context.set_default_timeout(10_000)
    return context


def login(page: Page, user: str) -> None:
    page.goto(f"/test-login/{user}")
    assert f"logged in as {user}" in page.content()


def submit(page: Page, selector: str) -> None:
    """Click a button that submits a form, and wait for the page it leads to.

    Reading the next page before it has loaded would read the old one.
    """
    with page.expect_navigation():
        page.click(selector)


def flashes(page: Page) -> list[str]:
    """The texts of the page's alert boxes (flashed messages and notices)."""
    return [" ".join(text.replace("×", " ").split()) for text in page.locator(".alert").all_inner_texts()]


def fill_account_form(page: Page, **fields: t.Any) -> None:
    """Type into the account form as a person would; booleans tick or untick."""
    for name, value in fields.items():
        field = page.locator(f"form.admin-form [name='{name}']")
        if isinstance(value, bool):
            field.set_checked(value)
        elif field.evaluate("e => e.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(str(value))


# --- screenshots for the README ----------------------------------------------------


def take_screenshots(folder: Path, browser: Browser | None = None) -> list[Path]:
    """Screenshots of the main pages of a demo site with two accounts and their logs.

    The README's pictures are made by this function (``python tests/browser.py``),
    and a browser test runs it, so they always show the real pages.
    """
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from cryptography.fernet import Fernet
    from flask_mail import Message
    from helpers import LiveServer, make_admin_site
    from message_rows import add_sample_traffic

    from flask_smtp_accounts.testing import LOGIN, PASSWORD, SMTPServer, make_certs

    folder.mkdir(parents=True, exist_ok=True)
    shots = []
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        certs = make_certs(tmp / "certs")
        server = stack.enter_context(
            SMTPServer(tls="starttls", cert=(certs.server_cert, certs.server_key), auth=(LOGIN, PASSWORD))
        )
        site = make_admin_site(
            tmp / "instance",
            SMTP_ACCOUNTS_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
            SMTP_ACCOUNTS_CA_FILE=str(certs.ca_cert),
        )
        with site.app.app_context():
            ext = site.ext
            ext.update_settings(test_recipient="postmaster@example.com")
            common = {
                "host": server.host,
                "port": server.port,
                "security": "starttls",
                "auth": "login",
                "login": LOGIN,
            }
            ext.add_account(
                password=PASSWORD, sender_name="Test mail", sender_email="test@example.com", **common
            )
            ext.add_account(password=PASSWORD, sender_name="", sender_email="hello@example.com", **common)
            ext.add_account(
                password=PASSWORD, sender_name="Marketing", sender_email="hello@example.com", **common
            )
            ext.update_account(1, backup_ids=[3], check=False)
            ext.send_test_letter(ext.get_account(1), "postmaster@example.com")
            for subject, sender, to in (
                ("Your order 1024 has shipped", "test@example.com", "ann@example.org"),
                ("Weekly offers", "Marketing <hello@example.com>", "bob@example.org"),
                ("Password reset", "hello@example.com", "cy@example.org"),
            ):
                site.site.mail.send(Message(subject, sender=sender, recipients=[to], body="Hello."))
            add_sample_traffic(ext)
            ext.alerts.add_channel(
                "webhook", url="https://hooks.slack.com/services/T000/B000/XXXXXXXX", format="slack"
            )
            ext.alerts.add_channel("email", recipients="ops@example.com", account_id=1)
        live = stack.enter_context(LiveServer(site.app))
        if browser is None:
            browser = launch_chromium(stack.enter_context(sync_playwright()))
            stack.callback(browser.close)
        context = new_context(browser, live.url)
        page = context.new_page()
        login(page, "admin")
        pages = {
            "dashboard": "/admin/smtp-accounts/",
            "alerts": "/admin/smtp-accounts/alerts/",
            "accounts-list": "/admin/smtp-accounts/accounts/",
            "account-form": "/admin/smtp-accounts/accounts/edit/?id=1",
            "settings": "/admin/smtp-accounts/settings/",
            "logs-list": "/admin/smtp-accounts/logs/",
        }
        for name, url in pages.items():
            page.goto(url)
            shots.append(folder / f"{name}.png")
            page.screenshot(path=str(shots[-1]), full_page=True)
        page.goto("/admin/smtp-accounts/accounts/new/")
        page.select_option("#preset", "microsoft-365")
        shots.append(folder / "account-preset.png")
        page.screenshot(path=str(shots[-1]), full_page=True)
        page.goto("/admin/smtp-accounts/messages/")
        shots.append(folder / "message-log.png")
        page.screenshot(path=str(shots[-1]), full_page=True)
        page.goto("/admin/smtp-accounts/routing/")
        page.fill("#sender", "Marketing <hello@example.com>")
        page.check("#bulk")
        submit(page, "button[type=submit]")
        shots.append(folder / "routing-preview.png")
        page.screenshot(path=str(shots[-1]), full_page=True)
        context.close()
    return shots


if __name__ == "__main__":
    for shot in take_screenshots(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots")):
        print(shot)
