"""The dashboard and the alerts page in a real browser (Debian's Chromium, Playwright)."""

from __future__ import annotations

import typing as t
from datetime import timedelta

import pytest
from browser import flashes, login, new_context, submit
from helpers import AdminSite, LiveServer
from message_rows import add_rows
from playwright.sync_api import Browser, Page
from receivers import WebhookReceiver
from test_dashboard import account

from flask_smtp_accounts.models import utcnow

pytestmark = pytest.mark.browser


@pytest.fixture
def page(browser: Browser, admin_site: AdminSite) -> t.Iterator[Page]:
    with LiveServer(admin_site.app) as live:
        context = new_context(browser, live.url)
        try:
            page = context.new_page()
            login(page, "admin")
            yield page
        finally:
            context.close()


def test_the_dashboard_shows_the_counts_and_the_chart(page: Page, admin_site: AdminSite) -> None:
    shop = account(admin_site, "shop@example.com", 2525)
    with admin_site.app.app_context():
        now = utcnow()
        add_rows(
            admin_site.ext,
            [{"status": "sent", "account_id": shop, "created_at": now}] * 6
            + [
                {
                    "status": "failed",
                    "account_id": shop,
                    "created_at": now - timedelta(hours=2),
                    "error": "boom",
                }
            ]
            + [{"status": "sent", "account_id": shop, "created_at": now - timedelta(days=5)}] * 2,
        )

    page.goto("/admin/")
    page.click("text=Mail through SMTP")
    page.click(".dropdown-menu >> text=Dashboard")
    assert page.locator("h2").first.inner_text() == "Mail at a glance"
    row = page.locator("tr.sa-route-counts").first
    assert row.locator("td").first.inner_text() == "shop@example.com"
    assert row.locator("td[data-window='24h'][data-kind='sent']").inner_text() == "6"
    assert row.locator("td[data-window='24h'][data-kind='failed']").inner_text() == "1"
    assert row.locator("td[data-window='7d'][data-kind='sent']").inner_text() == "8"

    chart = page.locator("svg.sa-chart")
    assert chart.is_visible()
    assert chart.locator("g.sa-bar").count() == 24
    box = chart.bounding_box()
    assert box is not None and box["height"] > 100  # drawn, not an empty box
    assert (chart.locator("g.sa-bar").last.locator("title").text_content() or "").endswith(
        ": 6 sent, 0 failed"
    )

    page.click(".sa-windows >> text=7 days")
    assert page.locator("svg.sa-chart g.sa-bar").count() == 7
    assert page.locator("svg.sa-chart g.sa-bar").last.get_attribute("data-sent") == "6"


def test_the_test_alert_button_delivers_to_the_local_webhook(page: Page, admin_site: AdminSite) -> None:
    with WebhookReceiver() as receiver:
        page.goto("/admin/smtp-accounts/alerts/")
        page.select_option("#kind", "webhook")
        page.fill("#url", receiver.url())
        page.select_option("#format", "teams")
        submit(page, "form.sa-add-channel button[type=submit]")
        assert "The alert channel was added." in flashes(page)[0]
        assert "s3cret-token" not in page.content()

        submit(page, "tr.sa-alert-channel button.sa-test-alert")

        assert "A test alert was sent to 127.0.0.1." in flashes(page)[0]
        post = receiver.next()
    assert post.path == "/hooks/T000/B000/s3cret-token"
    assert post.body["attachments"][0]["content"]["body"][1]["text"].startswith("This is a test alert")
