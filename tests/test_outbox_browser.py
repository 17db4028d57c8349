"""The Outbox page in a real browser (Debian's Chromium through Playwright): pause, then cancel with confirmation."""

from __future__ import annotations

import typing as t

import pytest
from browser import flashes, login, new_context, submit
from helpers import AdminSite, LiveServer
from playwright.sync_api import Browser
from test_outbox_admin import OUTBOX, add, queue, status

from flask_smtp_accounts.testing import SMTPServer

pytestmark = pytest.mark.browser


def test_pause_an_account_then_cancel_its_letters_after_confirming(
    admin_site: AdminSite, browser: Browser, make_smtp_server: t.Callable[..., SMTPServer]
) -> None:
    shop = add(admin_site, make_smtp_server(), "shop@example.com", "Shop")
    club = add(admin_site, make_smtp_server(), "club@example.com")
    queue(admin_site, "shop@example.com", 2)
    queue(admin_site, "club@example.com", 1)
    with LiveServer(admin_site.app) as live:
        context = new_context(browser, live.url)
        page = context.new_page()
        login(page, "admin")
        page.goto(OUTBOX)
        shop_row = page.locator(f"tr.sa-outbox-line[data-account='{shop}']")
        assert shop_row.locator(".sa-outbox-queued").inner_text() == "2"

        submit(page, f"tr.sa-outbox-line[data-account='{shop}'] button.sa-pause")
        assert f"The queue of account {shop} is paused: its letters wait." in flashes(page)
        assert shop_row.locator(".sa-outbox-state").inner_text() == "paused"

        submit(page, f"tr.sa-outbox-line[data-account='{shop}'] a.sa-cancel-link")
        assert "Queued letters of Shop <shop@example.com> that will not be sent: 2." in page.inner_text(
            "body"
        )
        submit(page, "button.sa-cancel-confirm")
        assert "Queued letters cancelled: 2." in flashes(page)
        assert shop_row.locator(".sa-outbox-queued").inner_text() == "0"
        context.close()
    assert (status(admin_site)[shop].queued, status(admin_site)[club].queued) == (0, 1)
    assert status(admin_site)[shop].paused
