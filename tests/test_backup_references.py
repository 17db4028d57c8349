"""An account another lists as its backup is not deleted; a dangling backup id is named.

Refusing the delete (rather than quietly removing the id from the other
accounts) leaves the choice of the stand-in account to a person.
"""

# ruff: noqa: F811 - fixtures imported from other test modules are taken as arguments by name

from __future__ import annotations

import typing as t

import pytest
import sqlalchemy as sa
from test_admin import ADMIN, account_form, client, csrf_token, get, text_of  # noqa: F401 - client is a fixture
from test_cli import cli_app, run  # noqa: F401 - the fixture

from flask_smtp_accounts import AccountInUseError

REFUSED = "account 2 is a backup of account 1, 3; remove it from their backups first"


def three_accounts(app: t.Any, ext: t.Any, server: t.Any) -> None:
    """Accounts 1 and 3 list account 2 as their backup."""
    fields = {"host": server.host, "port": server.port, "security": "none", "auth": "none"}
    with app.app_context():
        ext.add_account(check=False, sender_email="one@example.com", **fields)
        ext.add_account(check=False, sender_email="two@example.com", **fields)
        ext.add_account(check=False, sender_email="three@example.com", backup_ids=[2], **fields)
        ext.update_account(1, check=False, backup_ids=[2])


def account_ids(app: t.Any, ext: t.Any) -> list[int]:
    with app.app_context():
        return [a.id for a in ext.Account.query.order_by(ext.Account.id)]


def test_the_api_refuses_to_delete_a_backup_in_use(ext: t.Any, app: t.Any, smtp_server: t.Any) -> None:
    three_accounts(app, ext, smtp_server)
    with app.app_context():
        with pytest.raises(AccountInUseError, match=REFUSED) as refused:
            ext.delete_account(2)
        assert refused.value.used_by == (1, 3)
        ext.update_account(1, check=False, backup_ids=[])
        ext.update_account(3, check=False, backup_ids=[])
        ext.delete_account(2)
    assert account_ids(app, ext) == [1, 3]


def test_the_admin_refuses_to_delete_a_backup_in_use(
    admin_site: t.Any, client: t.Any, smtp_server: t.Any
) -> None:
    three_accounts(admin_site.app, admin_site.ext, smtp_server)
    token = csrf_token(get(client, f"{ADMIN}/accounts/"))

    alone = client.post(
        f"{ADMIN}/accounts/delete/", data={"id": 2, "csrf_token": token}, follow_redirects=True
    )
    in_bulk = client.post(
        f"{ADMIN}/accounts/action/",
        data={"action": "delete", "rowid": [2], "csrf_token": token},
        follow_redirects=True,
    )

    for response in (alone, in_bulk):
        assert f"The account was not deleted: {REFUSED}" in text_of(response.get_data(as_text=True))
    assert account_ids(admin_site.app, admin_site.ext) == [1, 2, 3]


def test_the_command_line_refuses_to_delete_a_backup_in_use(cli_app: t.Any, smtp_server: t.Any) -> None:
    ext = cli_app.extensions["smtp_accounts"].ext
    three_accounts(cli_app, ext, smtp_server)

    deleted = run(cli_app, "delete", "2", "--yes")

    assert deleted.exit_code == 1 and f"Error: {REFUSED}" in deleted.stderr
    assert account_ids(cli_app, ext) == [1, 2, 3]


def test_an_edit_refused_for_a_dangling_backup_names_it(
    admin_site: t.Any, client: t.Any, smtp_server: t.Any
) -> None:
    three_accounts(admin_site.app, admin_site.ext, smtp_server)
    with admin_site.app.app_context():  # as a delete by an older version, or by hand, leaves it
        db = admin_site.site.db
        db.session.execute(sa.delete(admin_site.ext.Account).where(admin_site.ext.Account.id == 2))
        db.session.commit()
    url = f"{ADMIN}/accounts/edit/?id=1"
    token = csrf_token(get(client, url))

    form = account_form(smtp_server, sender_email="one@example.com", sender_name="Renamed", backup_ids="2")
    saved = client.post(url, data={**form, "csrf_token": token}, follow_redirects=True)

    assert "The account was not saved. no account with id 2" in text_of(saved.get_data(as_text=True))
