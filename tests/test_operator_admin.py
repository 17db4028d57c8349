"""The operator's parts of the admin through the test client (issue 14): the refusal page, log search and export."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import typing as t

import pytest
from flask_mail import Message
from helpers import AdminSite
from test_admin import ADMIN, PAGES, csrf_token, get, text_of

from flask_smtp_accounts.testing import SMTPServer


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_a_refused_page_names_the_missing_permission_in_the_admins_look(
    admin_site: AdminSite, lang: str
) -> None:
    reader = admin_site.app.test_client()
    reader.set_cookie("lang", lang)
    reader.get("/test-login/reader")
    came_from = f"http://localhost{ADMIN}/logs/"
    for url, permission in (
        (f"{ADMIN}/accounts/", "manage_accounts"),
        (f"{ADMIN}/settings/", "manage_settings"),
    ):
        response = reader.get(url, headers={"Referer": came_from})
        assert response.status_code == 403, url
        page = response.get_data(as_text=True)
        words = text_of(page)
        assert permission in words
        if lang == "en":
            assert "You may not open this page" in words and "Forbidden" not in words
        else:
            assert "Эта страница вам недоступна" in words
        assert 'class="navbar' in page, "the admin's own frame"
        assert f'href="{came_from}"' in page, "a link back where the person came from"

    nobody = admin_site.app.test_client()
    nobody.get("/test-login/nobody")
    for url in PAGES:
        page = get(nobody, url, status=403)
        assert "You may not open this page" in text_of(page), url
        assert 'href="/admin/"' in page, "without a page to go back to, the admin's home"


def send_letters(site: AdminSite, server: SMTPServer, *subjects: str) -> None:
    with site.app.app_context():
        site.ext.add_account(
            check=False,
            sender_email="shop@example.com",
            host=server.host,
            port=server.port,
            security="none",
            auth="none",
        )
        for number, subject in enumerate(subjects):
            site.site.mail.send(
                Message(subject, sender="shop@example.com", recipients=[f"c{number}@example.org"], body="x")
            )


def test_the_search_box_and_the_export_keep_the_filters(
    admin_site: AdminSite, smtp_server: SMTPServer
) -> None:
    send_letters(admin_site, smtp_server, "Order 1 shipped", "Password reset", "Order 2 shipped")
    reader = admin_site.app.test_client()
    reader.get("/test-login/reader")
    page = get(reader, f"{ADMIN}/messages/?q=order")
    assert [s for s in ("Order 1 shipped", "Password reset", "Order 2 shipped") if s in text_of(page)] == [
        "Order 1 shipped",
        "Order 2 shipped",
    ]
    link = re.search(r'class="sa-export-csv" href="([^"]+)"', page)
    assert link and html.unescape(link.group(1)) == f"{ADMIN}/messages/export.csv?q=order"

    response = reader.get(f"{ADMIN}/messages/export.csv?q=order")
    assert response.status_code == 200 and response.is_streamed
    assert response.headers["Content-Disposition"] == "attachment; filename=message-log.csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [(r["subject"], r["recipients"]) for r in rows] == [
        ("Order 2 shipped", "c2@example.org"),
        ("Order 1 shipped", "c0@example.org"),
    ]
    exported = json.loads(get(reader, f"{ADMIN}/messages/export.json?status=sent&q=password"))
    assert [r["subject"] for r in exported] == ["Password reset"]
    assert reader.get(f"{ADMIN}/messages/export.xml").status_code == 404

    nobody = admin_site.app.test_client()
    nobody.get("/test-login/nobody")
    refused = nobody.get(f"{ADMIN}/messages/export.csv")
    assert refused.status_code == 403 and "Order" not in refused.get_data(as_text=True)


def test_a_copy_goes_to_the_address_typed_and_names_its_original(
    admin_site: AdminSite, smtp_server: SMTPServer
) -> None:
    with admin_site.app.app_context():
        admin_site.ext.update_settings(keep_bodies=True)
    send_letters(admin_site, smtp_server, "Receipt 5")
    client = admin_site.app.test_client()
    client.get("/test-login/admin")
    view = f"{ADMIN}/messages/1/"
    token = csrf_token(get(client, view))

    refused = client.post(
        f"{ADMIN}/messages/1/copy",
        data={"csrf_token": token, "recipient": "nobody at all"},
        follow_redirects=True,
    )
    assert "The letter was not sent: nobody at all is not a valid email address." in text_of(
        refused.get_data(as_text=True)
    )

    sent = client.post(
        f"{ADMIN}/messages/1/copy",
        data={"csrf_token": token, "recipient": "boss@example.net"},
        follow_redirects=True,
    )
    page = text_of(sent.get_data(as_text=True))
    assert "A copy was sent and delivered through shop@example.com." in page
    assert "Copy of letter 1" in page and "boss@example.net" in page
    assert smtp_server.wait_for(2)[1].rcpt_tos == ["boss@example.net"]
    listing = text_of(get(client, f"{ADMIN}/messages/"))
    assert "copy of 1" in listing

    reader = admin_site.app.test_client()
    reader.get("/test-login/reader")
    assert "Send a copy" not in text_of(get(reader, view))
    assert reader.post(f"{ADMIN}/messages/1/copy", data={"recipient": "x@example.net"}).status_code == 403


def unchecked(server: SMTPServer) -> dict[str, t.Any]:
    """The fields of an account on ``server`` without TLS or login, saved without a check."""
    return {"host": server.host, "port": server.port, "security": "none", "auth": "none", "check": False}


def test_the_accounts_list_says_what_each_account_carries(
    admin_site: AdminSite, smtp_server: SMTPServer
) -> None:
    with admin_site.app.app_context():
        ext = admin_site.ext
        common = unchecked(smtp_server)
        ext.add_account(sender_email="test@example.com", **common)
        ext.add_account(sender_email="hello@example.com", sender_name="Marketing Shop", **common)
        ext.add_account(sender_email="hello@example.com", **common)
        ext.add_account(sender_email="Hello@Example.com", **common)
        ext.add_account(sender_email="old@example.com", active=False, **common)
        ext.update_account(1, backup_ids=[3], check=False)
    client = admin_site.app.test_client()
    client.get("/test-login/admin")
    page = get(client, f"{ADMIN}/accounts/")
    cells = {
        int(row_id): text_of(cell)
        for row_id, cell in re.findall(
            r'name="rowid" class="action-checkbox" value="(\d+)".*?<td class="col-carries">(.*?)</td>',
            page,
            re.S,
        )
    }
    assert cells == {
        1: "everyday mail of test@example.com",
        2: "bulk mail as “Marketing Shop”",
        3: "not used: account 4 takes hello@example.com backup of account 1",
        4: "everyday mail of Hello@Example.com",
        5: "inactive: takes no part in routing",
    }


def test_saving_an_account_that_takes_an_addresss_mail_warns_and_backups_are_chosen_from_a_list(
    admin_site: AdminSite, smtp_server: SMTPServer
) -> None:
    with admin_site.app.app_context():
        common = unchecked(smtp_server)
        admin_site.ext.add_account(sender_email="hello@example.com", sender_name="Shop", **common)
        admin_site.ext.add_account(sender_email="other@example.com", **common)
    client = admin_site.app.test_client()
    client.get("/test-login/admin")
    form = get(client, f"{ADMIN}/accounts/new/")
    select = re.search(r'<select[^>]*name="backup_ids"[^>]*>(.*?)</select>', form, re.S)
    assert select and "multiple" in select.group(0)
    assert re.findall(r'<option[^>]*value="(\d+)"[^>]*>([^<]*)</option>', select.group(1)) == [
        ("1", "1: Shop &lt;hello@example.com&gt;"),
        ("2", "2: other@example.com"),
    ]
    data = {
        "csrf_token": csrf_token(form),
        "active": "y",
        "sender_email": "hello@example.com",
        "host": smtp_server.host,
        "port": str(smtp_server.port),
        "security": "none",
        "auth": "none",
        "backup_ids": ["2", "1"],
    }
    saved = text_of(
        client.post(f"{ADMIN}/accounts/new/", data=data, follow_redirects=True).get_data(as_text=True)
    )
    assert (
        "Account 3 now carries the everyday mail of hello@example.com instead of account 1: of the active accounts"
        " of an address, the one with the largest ID takes it." in saved
    )
    with admin_site.app.app_context():
        assert admin_site.ext.get_account(3).backup_ids == (2, 1)
    edit = get(client, f"{ADMIN}/accounts/edit/?id=3")
    select = re.search(r'<select[^>]*name="backup_ids"[^>]*>(.*?)</select>', edit, re.S)
    assert select and re.findall(r'<option (selected )?value="(\d+)"', select.group(1)) == [
        ("selected ", "2"),
        ("selected ", "1"),
    ]

    other = text_of(
        client.post(
            f"{ADMIN}/accounts/edit/?id=2",
            data={
                **data,
                "csrf_token": csrf_token(get(client, f"{ADMIN}/accounts/edit/?id=2")),
                "sender_email": "other@example.com",
                "backup_ids": [],
            },
            follow_redirects=True,
        ).get_data(as_text=True)
    )
    assert "now carries the everyday mail" not in other, "an account that already carried its address's mail"
