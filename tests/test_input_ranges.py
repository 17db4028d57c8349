"""Out-of-range input: a 404 or a field error on the pages, a clear error from the API, never a 500.

Ids beyond SQLite's 64-bit integers overflow its driver, a 300-digit log id
makes a file name too long for the disk, ``"²".isdigit()`` is true though
``int("²")`` fails, and a 100 KB search passes SQLite's LIKE limit.
"""

from __future__ import annotations

import html
import re
import typing as t

import pytest
from flask_mail import Message
from test_cli import run

from flask_smtp_accounts.errors import InvalidAccountError, LogAddressError
from flask_smtp_accounts.ids import MAX_ID, parse_id

ADMIN = "/admin/smtp-accounts"
HUGE = "9" * 30
HUGER = "9" * 300


def page_text(response: t.Any) -> str:
    body = response.get_data(as_text=True)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body)))


@pytest.fixture
def site(admin_site: t.Any, smtp_server: t.Any) -> t.Any:
    """The admin site with one account and one letter sent through it."""
    with admin_site.app.app_context():
        admin_site.ext.add_account(
            check=False,
            sender_email="shop@example.com",
            host=smtp_server.host,
            port=smtp_server.port,
            security="none",
            auth="none",
        )
        admin_site.site.mail.send(
            Message("Order 1", sender="shop@example.com", recipients=["a@example.org"], body=".")
        )
    return admin_site


@pytest.fixture
def client(site: t.Any) -> t.Any:
    client = site.app.test_client()
    client.get("/test-login/admin")
    return client


@pytest.mark.one_database
@pytest.mark.parametrize("value", ["0", "7", " 42 ", str(MAX_ID), 5])
def test_ids_in_range_are_read(value: t.Any) -> None:
    assert parse_id(value) == int(value)


@pytest.mark.one_database
@pytest.mark.parametrize(
    "value", [str(MAX_ID + 1), HUGE, "²", "٣", "-1", "1.0", "", "0x1", True, 2**63, -1, 1.0, None]
)
def test_anything_else_is_no_id(value: t.Any) -> None:
    assert parse_id(value) is None


@pytest.mark.parametrize(
    "url",
    [
        f"{ADMIN}/messages/{HUGE}/",
        f"{ADMIN}/messages/?page={HUGE}",
        f"{ADMIN}/logs/{HUGER}/send/",
        f"{ADMIN}/logs/{HUGER}/send/download",
        f"{ADMIN}/logs/1/send/?offset={HUGE}",
        f"{ADMIN}/accounts/?page={HUGE}",
    ],
)
def test_a_page_that_cannot_exist_is_not_found(client: t.Any, url: str) -> None:
    assert client.get(url).status_code == 404


@pytest.mark.parametrize("url", [f"{ADMIN}/messages/{HUGE}/resend", f"{ADMIN}/logs/{HUGER}/send/delete"])
def test_a_post_to_an_id_that_cannot_exist_is_not_found(client: t.Any, url: str) -> None:
    assert client.post(url).status_code == 404


@pytest.mark.parametrize("account", ["²", HUGE])
def test_an_account_filter_that_is_no_id_is_ignored_and_said_so(client: t.Any, account: str) -> None:
    response = client.get(f"{ADMIN}/messages/", query_string={"account": account})

    assert response.status_code == 200
    text = page_text(response)
    assert f"An account is chosen by its number; {account} was ignored." in text
    assert "Letters: 1;" in text


def test_the_last_day_there_is_bounds_nothing(client: t.Any) -> None:
    response = client.get(f"{ADMIN}/messages/?since=2000-01-01&until=9999-12-31")

    assert response.status_code == 200
    assert "Letters: 1;" in page_text(response)


@pytest.mark.parametrize("extra", ["_method=POST", "endpoint=x", "_external=1", "_anchor=x"])
def test_the_page_links_carry_only_the_filters(site: t.Any, client: t.Any, extra: str) -> None:
    with site.app.app_context(), site.site.mail.connect() as conn:
        for n in range(50):  # a second page
            conn.send(
                Message(f"Order {n}", sender="shop@example.com", recipients=["a@example.org"], body=".")
            )

    response = client.get(f"{ADMIN}/messages/?status=sent&page=2&{extra}")

    assert response.status_code == 200
    newer = re.search(r'class="page-link sa-page-prev" href="([^"]+)"', response.get_data(as_text=True))
    assert newer and html.unescape(newer.group(1)) == f"{ADMIN}/messages/?page=1&status=sent"


def test_a_search_longer_than_any_address_is_refused(client: t.Any) -> None:
    response = client.get(f"{ADMIN}/accounts/", query_string={"search": "a" * 100_000})

    assert response.status_code == 200
    text = page_text(response)
    assert "A search holds at most 256 characters; this one was not run." in text
    assert "shop@example.com" in text


def test_account_pages_for_an_id_that_cannot_exist(client: t.Any) -> None:
    edit = client.get(f"{ADMIN}/accounts/edit/?id={HUGE}", follow_redirects=True)
    assert edit.status_code == 200 and "Record does not exist." in page_text(edit)
    letter = client.get(f"{ADMIN}/accounts/test-letter/?id={HUGE}", follow_redirects=True)
    assert letter.status_code == 200 and "There is no such account." in page_text(letter)
    superscript = client.get(f"{ADMIN}/accounts/test-letter/?id=²", follow_redirects=True)
    assert superscript.status_code == 200 and "There is no such account." in page_text(superscript)


def test_the_api_answers_lookups_beyond_the_range(site: t.Any) -> None:
    ext = site.ext
    with site.app.app_context():
        for lookup in (ext.get_account, ext.get_message, ext.resend_message, ext.delete_account):
            with pytest.raises(LookupError, match=HUGE):
                lookup(int(HUGE))
        for log_action in (ext.read_log, ext.delete_log):
            with pytest.raises(LogAddressError):
                log_action(int(HUGER), "send")
        assert ext.messages(page=int(HUGE)).items == []
        assert ext.messages(account_id=int(HUGE)).items == []
        assert ext.messages(account_id=1).total == 1
        with pytest.raises(InvalidAccountError, match=f"backup_ids: must be account ids, not {HUGE}"):
            ext.update_account(1, check=False, backup_ids=[int(HUGE)])
        with pytest.raises(InvalidAccountError, match="backup_ids: must be account ids"):
            ext.update_account(1, check=False, backup_ids="²")


def test_the_command_line_answers_ids_beyond_the_range(site: t.Any) -> None:
    checked = run(site.app, "check", HUGE)
    assert checked.exit_code == 1 and f"There is no SMTP account with id {HUGE}." in checked.stderr
    shown = run(site.app, "logs", "show", HUGER, "send")
    assert shown.exit_code == 1 and "A log is addressed by an account id" in shown.stderr


def test_a_backup_chosen_by_a_digit_that_is_not_ascii_is_refused(
    site: t.Any, client: t.Any, smtp_server: t.Any
) -> None:
    from test_admin import account_form, csrf_token, get

    with site.app.app_context():
        for n in (2, 3):
            site.ext.add_account(
                check=False,
                sender_email=f"other{n}@example.com",
                host=smtp_server.host,
                port=smtp_server.port,
                security="none",
                auth="none",
            )
    url = f"{ADMIN}/accounts/edit/?id=1"
    form = account_form(smtp_server, sender_email="shop@example.com", backup_ids="٣")  # ARABIC-INDIC THREE

    response = client.post(url, data={**form, "csrf_token": csrf_token(get(client, url))})

    assert response.status_code == 200
    with site.app.app_context():
        assert site.ext.get_account(1).backup_ids == ()
