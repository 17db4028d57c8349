"""The admin page "Outbox" through Flask's test client: figures, pause, resume, cancel, refusals.

Letters are queued the way a site queues them (``with smtp_accounts.outbox():
mail.send(...)``), and what the page's buttons did is read back from the
outbox API, the message log and the SMTP server.
"""

from __future__ import annotations

import re
import typing as t

import pytest
from flask_mail import Message
from helpers import AdminSite
from test_admin import ADMIN, csrf_token, get, text_of

from flask_smtp_accounts.testing import SMTPServer

OUTBOX = f"{ADMIN}/outbox/"


@pytest.fixture
def client(admin_site: AdminSite) -> t.Any:
    client = admin_site.app.test_client()
    client.get("/test-login/admin")
    return client


def add(site: AdminSite, server: SMTPServer, email: str, name: str = "") -> int:
    with site.app.app_context():
        return int(
            site.ext.add_account(
                check=False,
                sender_email=email,
                sender_name=name,
                host=server.host,
                port=server.port,
                security="none",
                auth="none",
            ).id
        )


def queue(site: AdminSite, sender: str, count: int) -> None:
    """``count`` letters from ``sender`` stored in the outbox, as a site's newsletter run stores them."""
    with site.app.app_context(), site.ext.outbox():
        for number in range(count):
            site.site.mail.send(
                Message(f"News {number}", sender=sender, recipients=[f"r{number}@example.org"], body="x")
            )


def status(site: AdminSite) -> dict[int | None, t.Any]:
    with site.app.app_context():
        return {line.account_id: line for line in site.ext.outbox_status()}


def row(page: str, account_id: int) -> str:
    """The visible text of an account's row of the outbox table."""
    match = re.search(rf'<tr class="sa-outbox-line" data-account="{account_id}">(.*?)</tr>', page, re.S)
    assert match, f"no row for account {account_id}"
    return text_of(match.group(1))


def press_cancel(client: t.Any, which: int | str, confirm: str) -> str:
    """Press the confirmation page's button; the text of the page that follows."""
    response = client.post(
        f"{OUTBOX}cancel/", data={"account": which, "csrf_token": csrf_token(confirm)}, follow_redirects=True
    )
    return text_of(response.get_data(as_text=True))


@pytest.fixture
def two_queues(admin_site: AdminSite, make_smtp_server: t.Callable[..., SMTPServer]) -> tuple[int, int]:
    """Account "Shop" with 3 letters queued, account "Club" with 1."""
    shop = add(admin_site, make_smtp_server(), "shop@example.com", "Shop")
    club = add(admin_site, make_smtp_server(), "club@example.com")
    queue(admin_site, "shop@example.com", 3)
    queue(admin_site, "club@example.com", 1)
    return shop, club


def test_the_page_shows_each_accounts_queue(
    admin_site: AdminSite, client: t.Any, two_queues: tuple[int, int]
) -> None:
    shop, club = two_queues
    page = get(client, OUTBOX)
    assert row(page, shop).startswith("Shop <shop@example.com> 3 0 0 0")
    assert row(page, club).startswith("club@example.com 1 0 0 0")
    assert "running" in row(page, shop) and "Pause" in row(page, shop)
    assert "Outbox" in text_of(get(client, f"{ADMIN}/"))  # in the menu

    with admin_site.app.app_context():
        admin_site.ext.pause_queue(club)
        admin_site.ext.deliver_queued(connections=1, limit=1)
    # One letter sent in the rate's 5-minute window: 0.2 a minute, so the 2 left take 10 minutes.
    assert row(get(client, OUTBOX), shop).startswith("Shop <shop@example.com> 2 0 1 0 0.2 about 10 minutes")


def test_pause_and_resume_stop_and_restart_an_accounts_letters(
    admin_site: AdminSite, client: t.Any, two_queues: tuple[int, int]
) -> None:
    shop, club = two_queues
    token = csrf_token(get(client, OUTBOX))
    response = client.post(
        f"{OUTBOX}pause/", data={"account": shop, "csrf_token": token}, follow_redirects=True
    )
    page = response.get_data(as_text=True)
    assert f"The queue of account {shop} is paused: its letters wait." in text_of(page)
    assert "paused" in row(page, shop) and "Resume" in row(page, shop)
    assert (status(admin_site)[shop].paused, status(admin_site)[club].paused) == (True, False)

    with admin_site.app.app_context():
        admin_site.ext.deliver_queued(connections=2)
    assert (status(admin_site)[shop].queued, status(admin_site)[club].queued) == (3, 0)

    response = client.post(
        f"{OUTBOX}resume/", data={"account": shop, "csrf_token": token}, follow_redirects=True
    )
    assert f"The queue of account {shop} goes on." in text_of(response.get_data(as_text=True))
    with admin_site.app.app_context():
        admin_site.ext.deliver_queued(connections=2)
    assert status(admin_site)[shop].queued == 0
    assert row(get(client, OUTBOX), shop).startswith("Shop <shop@example.com> 0 0 3 0")


@pytest.mark.parametrize(
    ("which", "asked", "left"),
    [
        ("shop", "Queued letters of Shop <shop@example.com> that will not be sent: 3.", (0, 1)),
        ("all", "Queued letters of every account that will not be sent: 4.", (0, 0)),
    ],
)
def test_cancelling_asks_first_then_cancels_those_letters_only(
    admin_site: AdminSite,
    client: t.Any,
    two_queues: tuple[int, int],
    which: str,
    asked: str,
    left: tuple[int, int],
) -> None:
    shop, club = two_queues
    account = shop if which == "shop" else "all"
    confirm = get(client, f"{OUTBOX}cancel/?account={account}")
    assert asked in text_of(confirm)
    assert status(admin_site)[shop].queued == 3, "the confirmation page changes nothing"

    cancelled_count = 3 if which == "shop" else 4
    assert f"Queued letters cancelled: {cancelled_count}." in press_cancel(client, account, confirm)
    assert (status(admin_site)[shop].queued, status(admin_site)[club].queued) == left
    with admin_site.app.app_context():
        cancelled = admin_site.ext.messages(status="cancelled").items
    expected = ["shop@example.com"] * 3 + ([] if which == "shop" else ["club@example.com"])
    assert sorted(m.sender for m in cancelled) == sorted(expected)


def test_requests_without_the_security_token_or_by_get_change_nothing(
    admin_site: AdminSite, client: t.Any, two_queues: tuple[int, int]
) -> None:
    shop, _club = two_queues
    refused = [
        client.post(f"{OUTBOX}pause/", data={"account": shop}, follow_redirects=True),
        client.post(f"{OUTBOX}cancel/", data={"account": shop}, follow_redirects=True),
        client.post(
            f"{OUTBOX}cancel/", data={"account": "all", "csrf_token": "forged"}, follow_redirects=True
        ),
    ]
    for response in refused:
        assert "the form lacked its security token. Nothing was changed." in text_of(
            response.get_data(as_text=True)
        )
    assert client.get(f"{OUTBOX}pause/?account={shop}").status_code == 405
    assert (status(admin_site)[shop].paused, status(admin_site)[shop].queued) == (False, 3)


def test_seeing_needs_view_outbox_and_acting_needs_manage_outbox(
    admin_site: AdminSite, two_queues: tuple[int, int]
) -> None:
    shop, _club = two_queues
    nobody = admin_site.app.test_client()
    nobody.get("/test-login/reader")  # may read the logs, not the outbox
    page = nobody.get(OUTBOX)
    assert page.status_code == 403 and "view_outbox" in text_of(page.get_data(as_text=True))

    watcher = admin_site.app.test_client()
    watcher.get("/test-login/outbox_watcher")
    page = get(watcher, OUTBOX)
    assert row(page, shop).startswith("Shop <shop@example.com> 3")
    assert "Pause" not in row(page, shop) and "Cancel" not in text_of(page)
    for url, data in ((f"{OUTBOX}pause/", {"account": shop}), (f"{OUTBOX}cancel/", {"account": "all"})):
        response = watcher.post(url, data=data)  # refused for the permission, before the token is looked at
        assert response.status_code == 403 and "manage_outbox" in text_of(response.get_data(as_text=True))
    assert watcher.get(f"{OUTBOX}cancel/?account=all").status_code == 403
    assert (status(admin_site)[shop].paused, status(admin_site)[shop].queued) == (False, 3)


def test_the_page_speaks_russian(admin_site: AdminSite, client: t.Any, two_queues: tuple[int, int]) -> None:
    shop, _club = two_queues
    client.set_cookie("lang", "ru")
    page = get(client, OUTBOX)
    assert "Исходящие" in text_of(page) and "Приостановить" in row(page, shop)
