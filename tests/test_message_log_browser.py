"""The message log page in a real browser (Debian's Chromium, Playwright), like ``test_admin_browser.py``."""

from __future__ import annotations

import typing as t

import pytest
from browser import flashes, login, new_context, submit
from flask_mail import Message
from helpers import AdminSite, LiveServer
from misbehaving import Refuse
from playwright.sync_api import Browser

from flask_smtp_accounts import DeliveryError

pytestmark = pytest.mark.browser


def test_finding_a_failed_letter_and_resending_it(
    browser: Browser, admin_site: AdminSite, make_smtp_server: t.Any
) -> None:
    server = make_smtp_server(handler_hooks=Refuse("DATA", "451 4.3.0 Try again later", times=1))
    with admin_site.app.app_context():
        admin_site.ext.add_account(
            check=False,
            sender_email="shop@example.com",
            host=server.host,
            port=server.port,
            security="none",
            auth="none",
        )
        with pytest.raises(DeliveryError):
            admin_site.site.mail.send(
                Message("Your order", sender="shop@example.com", recipients=["bob@example.org"], body="x")
            )
        admin_site.site.mail.send(
            Message("Welcome", sender="shop@example.com", recipients=["ann@example.org"], body="Hi")
        )

    with LiveServer(admin_site.app) as live:
        context = new_context(browser, live.url)
        try:
            page = context.new_page()
            login(page, "admin")
            page.goto("/admin/smtp-accounts/messages/")
            assert page.locator("tr.sa-message-row").count() == 2
            page.select_option("#status", "failed")
            submit(page, "button:text('Filter')")
            [row] = page.locator("tr.sa-message-row").all()
            assert "Your order" in row.inner_text() and "451 4.3.0 Try again later" in row.inner_text()
            row.locator("a:text('View')").click()
            submit(page, "form.sa-resend button")
            assert "The letter was sent again and delivered through shop@example.com." in " ".join(
                flashes(page)
            )
            assert page.locator(".sa-status").inner_text() == "sent"
            assert page.locator("form.sa-resend").count() == 0
        finally:
            context.close()

    got = server.wait_for(2)
    assert [g.message["Subject"] for g in got] == ["Welcome", "Your order"]
