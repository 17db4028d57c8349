"""The operator's parts of the admin in a real browser (issue 14): presets, log search and export, the 403 page.

Debian's Chromium driven by Playwright, the site on 127.0.0.1 in a thread,
as in ``test_admin_browser.py``; one browser for the whole run.
"""

from __future__ import annotations

import contextlib
import csv
import io
import typing as t
from pathlib import Path

import pytest
from browser import login, new_context, submit
from flask_mail import Message
from helpers import AdminSite, LiveServer
from playwright.sync_api import Browser, Page

from flask_smtp_accounts.testing import SMTPServer

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


def test_a_preset_fills_the_form_and_the_port_follows_the_security(
    browser: Browser, admin_site: AdminSite
) -> None:
    with open_page(browser, admin_site) as page:
        page.goto(f"{ADMIN}/accounts/new/")
        assert page.locator(".sa-preset-note:visible").count() == 0
        page.select_option("#preset", "microsoft-365")
        assert page.input_value("#host") == "smtp.office365.com"
        assert (page.input_value("#port"), page.input_value("#security"), page.input_value("#auth")) == (
            "587",
            "starttls",
            "oauth2",
        )
        assert page.input_value("#oauth_provider") == "microsoft"
        assert page.locator("#oauth_client_id").is_visible(), (
            "the OAuth2 fields show with the preset's authorization"
        )
        note = page.locator(".sa-preset-note:visible")
        assert "30 messages a minute per mailbox" in note.inner_text()
        assert "end of December 2026" in note.inner_text()
        assert (note.locator("a").get_attribute("href") or "").startswith("https://learn.microsoft.com/")

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


def log_letters(site: AdminSite, server: SMTPServer) -> None:
    """A sent letter, a long failed one (a long error, long addresses and subject), and a letter to find."""
    with site.app.app_context():
        site.ext.update_settings(keep_bodies=True)
        site.ext.add_account(
            check=False,
            sender_name="Marketing Shop with a long name",
            sender_email="newsletters.and.offers@shop.example.com",
            host=server.host,
            port=server.port,
            security="none",
            auth="none",
        )
        mail = site.site.mail
        mail.send(
            Message(
                "Your order 1024 has shipped",
                sender="newsletters.and.offers@shop.example.com",
                recipients=["ann@example.org"],
                body="On its way.",
            )
        )
        many: list[str | tuple[str, str]] = [
            f"customer.number.{n}.with.a.long.address@subdomain.example.org" for n in range(5)
        ]
        mail.send(
            Message(
                "A subject long enough to wrap: " + "weekly offers and news " * 6,
                sender="newsletters.and.offers@shop.example.com",
                recipients=many,
                body="Offers.",
            )
        )
    with site.app.app_context():
        db, table = site.site.db, site.app.extensions["smtp_accounts"].models.Message.__table__
        with db.engine.begin() as conn:  # a failure a server might give, at its full length
            conn.execute(
                table.update()
                .where(table.c.id == 2)
                .values(
                    status="failed",
                    error_stage="send",
                    error_code=451,
                    error_reply="4.7.1 " + "Rate limit exceeded for this sender, try again later " * 8,
                    error="send failed",
                    pending='["customer.number.0.with.a.long.address@subdomain.example.org"]',
                )
            )


def test_search_and_export_download_the_rows_shown(
    browser: Browser, admin_site: AdminSite, smtp_server: SMTPServer
) -> None:
    log_letters(admin_site, smtp_server)
    with open_page(browser, admin_site) as page:
        page.goto(f"{ADMIN}/messages/")
        assert page.locator("tr.sa-message-row").count() == 2
        page.fill("#q", "order 1024")
        submit(page, "button:text('Filter')")
        [row] = page.locator("tr.sa-message-row").all()
        assert "Your order 1024 has shipped" in row.inner_text()
        with page.expect_download() as download:
            page.click("a.sa-export-csv")
        text = Path(download.value.path()).read_text(encoding="utf-8")
        rows = list(csv.DictReader(io.StringIO(text)))
        assert [(r["id"], r["subject"], r["recipients"], r["status"]) for r in rows] == [
            ("1", "Your order 1024 has shipped", "ann@example.org", "sent"),
        ]
        assert download.value.suggested_filename == "message-log.csv"


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_the_message_log_fits_1280_pixels(
    browser: Browser, admin_site: AdminSite, smtp_server: SMTPServer, lang: str
) -> None:
    log_letters(admin_site, smtp_server)
    with open_page(browser, admin_site, lang=lang) as page:
        page.goto(f"{ADMIN}/messages/")
        assert page.viewport_size == {"width": 1280, "height": 800}
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280
        for row in page.locator("tr.sa-message-row").all():
            for link in row.locator("td:last-child a, td:last-child button").all():
                box = link.bounding_box()
                assert link.is_visible() and box is not None and box["x"] + box["width"] <= 1280, (
                    link.inner_text()
                )
        failed = page.locator("tr.sa-message-row[data-status=failed]")
        assert failed.locator("button:visible").count() == 1, "the failed letter offers Resend"
        error = failed.locator(".sa-error")
        assert "Rate limit exceeded" in (error.get_attribute("title") or "")
        assert error.evaluate("e => e.scrollHeight > e.clientHeight"), "a long error is cut, whole on hover"


def test_a_user_without_the_permission_sees_which_one_and_a_way_back(
    browser: Browser, admin_site: AdminSite
) -> None:
    with open_page(browser, admin_site, user="reader") as page:
        page.goto(f"{ADMIN}/messages/")
        response = page.goto(f"{ADMIN}/accounts/", referer=page.url)
        assert response is not None and response.status == 403
        assert page.locator("h1").inner_text() == "You may not open this page"
        assert "manage_accounts" in page.locator(".sa-forbidden").inner_text()
        assert page.locator(".navbar").is_visible(), "the admin's own frame, with the pages the user may open"
        assert page.locator(".navbar").get_by_text("Message log").count() == 1
        submit(page, "a.sa-back")
        assert page.url.endswith(f"{ADMIN}/messages/")
