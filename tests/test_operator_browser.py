"""The operator's parts of the admin in a real browser (issue 14): presets, log search and export, the 403 page.

Debian's Chromium driven by Playwright, the site on 127.0.0.1 in a thread,
as in ``test_admin_browser.py``; one browser for the whole run.
"""

from __future__ import annotations

import contextlib
import typing as t

import pytest
from browser import login, new_context
from helpers import AdminSite, LiveServer
from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser

ADMIN = "/admin/smtp-accounts"


@contextlib.contextmanager
def open_page(browser: Browser, site: AdminSite, user: str = "admin", lang: str = "en") -> t.Iterator[Page]:
    """A page of a fresh profile on the live site, logged in as ``user``."""
    with LiveServer(site.app) as live:
        context = new_context(browser, live.url, lang=lang)
        try:
            page = context.new_page()
            login(page, user)
            yield page
        finally:
            context.close()


def test_a_preset_fills_the_form_and_the_port_follows_the_security(browser: Browser, admin_site: AdminSite) -> None:
    with open_page(browser, admin_site) as page:
        page.goto(f"{ADMIN}/accounts/new/")
        assert page.locator(".sa-preset-note:visible").count() == 0
        page.select_option("#preset", "microsoft-365")
        assert page.input_value("#host") == "smtp.office365.com"
        assert (page.input_value("#port"), page.input_value("#security"), page.input_value("#auth")) == (
            "587", "starttls", "oauth2",
        )
        assert page.input_value("#oauth_provider") == "microsoft"
        assert page.locator("#oauth_client_id").is_visible(), "the OAuth2 fields show with the preset's authorization"
        note = page.locator(".sa-preset-note:visible")
        assert "30 messages a minute per mailbox" in note.inner_text()
        assert "end of December 2026" in note.inner_text()
        assert note.locator("a").get_attribute("href").startswith("https://learn.microsoft.com/")

        page.select_option("#security", "ssl")
        assert page.input_value("#port") == "465"
        page.select_option("#security", "none")
        assert page.input_value("#port") == "25"

        page.select_option("#preset", "amazon-ses")
        assert page.locator("#region").is_visible()
        page.select_option("#region", "eu-central-1")
        assert page.input_value("#host") == "email-smtp.eu-central-1.amazonaws.com"

        page.select_option("#preset", "sendgrid")
        assert page.input_value("#login") == "apikey"
        assert not page.locator("#region").is_visible()
        page.fill("#port", "2525")
        page.select_option("#security", "ssl")
        assert page.input_value("#port") == "2525", "a port typed by hand stays"
