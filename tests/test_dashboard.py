"""The dashboard: counts per route and window, the chart, and what needs a person, through the test client."""

from __future__ import annotations

import re
import typing as t
from datetime import timedelta

import pytest
from flask_mail import Message
from helpers import AdminSite
from message_rows import add_rows, set_health
from test_admin import text_of

from flask_smtp_accounts import DeliveryError
from flask_smtp_accounts.models import utcnow
from flask_smtp_accounts.testing import free_port

DASHBOARD = "/admin/smtp-accounts/"


def client_for(site: AdminSite, user: str = "admin") -> t.Any:
    client = site.app.test_client()
    client.get(f"/test-login/{user}")
    return client


def account(site: AdminSite, email: str, port: int, **fields: t.Any) -> int:
    with site.app.app_context():
        return int(
            site.ext.add_account(
                check=False,
                sender_email=email,
                host="127.0.0.1",
                port=port,
                security="none",
                auth="none",
                **fields,
            ).id
        )


def cells(page: str, row_class: str, account_id: int | str | None = None) -> dict[tuple[str, str], int]:
    """The counts of one row of the table: (window, kind) -> number; ``account_id=""``: Flask-Mail's own row."""
    marker = f'data-account="{account_id}"' if account_id is not None else ""
    rows = re.findall(rf'<tr class="{row_class}[^"]*"[^>]*{marker}[^>]*>(.*?)</tr>', page, flags=re.S)
    assert len(rows) == 1, rows
    return {
        (w, k): int(n) for w, k, n in re.findall(r'data-window="(\w+)" data-kind="(\w+)">(\d+)<', rows[0])
    }


def test_counts_per_account_and_window(admin_site: AdminSite) -> None:
    shop = account(admin_site, "shop@example.com", 2525)
    news = account(admin_site, "news@example.com", 2526)
    now = utcnow()
    hour, day = timedelta(hours=1), timedelta(days=1)
    rows = (
        [{"status": "sent", "account_id": shop, "created_at": now - hour}] * 3
        + [{"status": "suppressed", "account_id": shop, "created_at": now - 2 * day}]
        + [{"status": "failed", "account_id": shop, "created_at": now - 10 * day}] * 2
        + [{"status": "queued", "account_id": news, "created_at": now - 3 * hour}]
        + [{"status": "sent", "account_id": None, "created_at": now - 20 * day}]
        + [{"status": "sent", "account_id": shop, "created_at": now - 40 * day}]
        * 5  # older than every window
    )
    with admin_site.app.app_context():
        add_rows(admin_site.ext, rows)
    page = client_for(admin_site).get(DASHBOARD).get_data(as_text=True)

    assert cells(page, "sa-route-counts", shop) == {
        ("24h", "sent"): 3,
        ("24h", "failed"): 0,
        ("24h", "queued"): 0,
        ("7d", "sent"): 4,
        ("7d", "failed"): 0,
        ("7d", "queued"): 0,
        ("30d", "sent"): 4,
        ("30d", "failed"): 2,
        ("30d", "queued"): 0,
    }
    assert cells(page, "sa-route-counts", news)[("24h", "queued")] == 1
    assert cells(page, "sa-route-counts", "")[("30d", "sent")] == 1  # Flask-Mail's own settings
    total = cells(page, "sa-total-counts")
    assert (
        total[("24h", "sent")],
        total[("7d", "sent")],
        total[("30d", "sent")],
        total[("30d", "failed")],
    ) == (3, 4, 5, 2)
    text = text_of(page)
    assert "shop@example.com" in text and "Flask-Mail default" in text
    assert "Letters waiting in the retry queue: 1; the oldest since" in text


def test_claimed_letters_count_as_waiting_and_cancelled_ones_do_not(admin_site: AdminSite) -> None:
    # A drainer's claim is not a send: until its write-ahead the letter still waits.
    news = account(admin_site, "news@example.com", 2526)
    now = utcnow()
    rows = (
        [{"status": "queued", "account_id": news, "created_at": now - timedelta(minutes=5)}]
        + [{"status": "claimed", "account_id": news, "created_at": now - timedelta(hours=2)}] * 2
        + [{"status": "cancelled", "account_id": news, "created_at": now - timedelta(hours=1)}] * 4
    )
    with admin_site.app.app_context():
        add_rows(admin_site.ext, rows)
        totals, _ = admin_site.ext.mail_stats.counts()
    page = client_for(admin_site).get(DASHBOARD).get_data(as_text=True)

    counts = cells(page, "sa-route-counts", news)
    assert (counts[("24h", "queued")], counts[("24h", "failed")], counts[("24h", "sent")]) == (3, 0, 0)
    assert "Letters waiting in the retry queue: 3; the oldest since" in text_of(page)
    assert (totals["24h"].queued, totals["24h"].cancelled) == (3, 4)


def test_the_chart_is_an_svg_of_the_window(admin_site: AdminSite) -> None:
    shop = account(admin_site, "shop@example.com", 2525)
    now = utcnow()
    with admin_site.app.app_context():
        add_rows(
            admin_site.ext,
            [{"status": "sent", "account_id": shop, "created_at": now}] * 4
            + [{"status": "failed", "account_id": shop, "created_at": now}]
            + [{"status": "sent", "account_id": shop, "created_at": now - timedelta(days=3)}] * 2,
        )
    client = client_for(admin_site)
    day = client.get(DASHBOARD).get_data(as_text=True)
    bars = re.findall(r'<g class="sa-bar" data-sent="(\d+)" data-failed="(\d+)">', day)
    assert len(bars) == 24 and bars[-1] == ("4", "1") and sum(int(s) for s, _ in bars) == 4
    assert (
        "<script" not in day[day.find("<svg") : day.find("</svg>")]
        and "Letters per hour, last 24 hours" in day
    )
    week = client.get(DASHBOARD + "?window=7d").get_data(as_text=True)
    bars = re.findall(r'<g class="sa-bar" data-sent="(\d+)" data-failed="(\d+)">', week)
    assert len(bars) == 7 and bars[-1] == ("4", "1") and bars[-4] == ("2", "0")
    assert (
        len(re.findall(r'class="sa-bar"', client.get(DASHBOARD + "?window=30d").get_data(as_text=True))) == 30
    )


def test_a_real_failure_shows_as_the_accounts_last_failure(admin_site: AdminSite) -> None:
    dead = account(admin_site, "shop@example.com", free_port())
    with admin_site.app.app_context():
        admin_site.ext.update_settings(cooldown_s=600)
        with pytest.raises(DeliveryError):
            admin_site.site.mail.send(
                Message("Your order", sender="shop@example.com", recipients=["bob@example.org"], body="x")
            )
    page = client_for(admin_site).get(DASHBOARD).get_data(as_text=True)
    assert cells(page, "sa-route-counts", dead)[("24h", "failed")] == 1
    failures = page[page.find("sa-last-failures") :]
    assert "shop@example.com" in failures and "connection" in text_of(failures)


def test_cooling_accounts_and_refused_tokens_are_named_with_a_way_out(admin_site: AdminSite) -> None:
    shop = account(admin_site, "shop@example.com", 2525)
    with admin_site.app.app_context():
        office = int(
            admin_site.ext.add_account(
                check=False,
                sender_email="office@example.com",
                host="127.0.0.1",
                port=2525,
                security="starttls",
                auth="oauth2",
                login="office@example.com",
                oauth_provider="microsoft",
                oauth_flow="app",
                oauth_tenant="contoso.example",
                oauth_client_id="id",
                oauth_client_secret="secret",
            ).id
        )
        now = utcnow()
        set_health(
            admin_site.ext,
            shop,
            last_failed_at=now,
            cooldown_until=now + timedelta(minutes=5),
            last_stage="connect",
            last_error="connection refused",
        )
        set_health(
            admin_site.ext,
            office,
            last_failed_at=utcnow(),
            last_stage="token",
            last_error="the client secret has expired",
        )
    page = client_for(admin_site).get(DASHBOARD).get_data(as_text=True)
    text = text_of(page)
    assert "Account shop@example.com is skipped until" in text and "connection refused" in text
    assert (
        "The OAuth2 token of office@example.com was refused" in text
        and "the client secret has expired" in text
    )
    assert f'href="/admin/smtp-accounts/accounts/edit/?id={office}"' in page

    with admin_site.app.app_context():  # signing in again saves the account: the notice goes
        admin_site.ext.update_account(office, check=False, oauth_client_secret="new secret")
    assert "The OAuth2 token of" not in text_of(client_for(admin_site).get(DASHBOARD).get_data(as_text=True))


def test_the_dashboard_leads_the_category_and_needs_view_logs(admin_site: AdminSite) -> None:
    page = client_for(admin_site).get(DASHBOARD).get_data(as_text=True)
    menu = re.findall(r'href="(/admin/smtp-accounts/[^"]*)"', page)
    assert menu[0] == DASHBOARD
    assert client_for(admin_site, "reader").get(DASHBOARD).status_code == 200
    assert client_for(admin_site, "nobody").get(DASHBOARD).status_code == 403


def test_the_dashboard_speaks_russian(admin_site: AdminSite) -> None:
    client = client_for(admin_site)
    client.set_cookie("lang", "ru")
    text = text_of(client.get(DASHBOARD).get_data(as_text=True))
    assert "Почта в целом" in text and "24 часа" in text
