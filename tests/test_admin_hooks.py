"""flask-admin's model hooks run for a site's subclass of the accounts view, as flask-admin documents them.

``on_model_change(form, model, is_created)`` in the transaction, before the
commit; ``after_model_change(form, model, is_created)`` after it;
``on_model_delete(model)`` / ``after_model_delete(model)`` around a delete.
The extension saves through its API (check first, secrets encrypted), so
these tests drive the pages through the test client and read what the
site's hooks saw.
"""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
from flask_admin.babel import gettext
from helpers import AdminSite, make_admin_site
from test_admin import ADMIN, account_form, accounts, add, csrf_token, get, post_form, text_of
from wtforms.validators import ValidationError

from flask_smtp_accounts.admin import AccountsView
from flask_smtp_accounts.testing import Certs, SMTPServer


class RecordingAccountsView(AccountsView):
    """A site's subclass: it writes down every hook call, with what a hook can see at that moment."""

    calls: t.ClassVar[list[tuple[t.Any, ...]]] = []
    refuse_changes: t.ClassVar[bool] = False

    def on_model_change(self, form: t.Any, model: t.Any, is_created: bool) -> None:
        self.calls.append(("on_model_change", form.sender_name.data, model.sender_name, is_created))
        if self.refuse_changes:
            raise ValidationError("Names are frozen this week.")

    def after_model_change(self, form: t.Any, model: t.Any, is_created: bool) -> None:
        self.calls.append(("after_model_change", form.sender_name.data, model.sender_name, is_created))

    def on_model_delete(self, model: t.Any) -> None:
        self.calls.append(("on_model_delete", model.id))

    def after_model_delete(self, model: t.Any) -> None:
        self.calls.append(("after_model_delete", model.id))


@pytest.fixture
def hooked_site(tmp_path: Path, encryption_key: str, certs: Certs) -> t.Iterator[AdminSite]:
    RecordingAccountsView.calls = []
    RecordingAccountsView.refuse_changes = False
    made = make_admin_site(
        tmp_path / "instance",
        views={"accounts": RecordingAccountsView},
        SMTP_ACCOUNTS_ENCRYPTION_KEYS=encryption_key,
        SMTP_ACCOUNTS_CA_FILE=str(certs.ca_cert),
    )
    yield made
    with made.app.app_context():
        made.site.db.engine.dispose()


@pytest.fixture
def client(hooked_site: AdminSite) -> t.Any:
    client = hooked_site.app.test_client()
    client.get("/test-login/admin")
    return client


def test_create_edit_and_delete_call_the_hooks_in_flask_admins_order(
    hooked_site: AdminSite, client: t.Any, starttls_server: SMTPServer
) -> None:
    post_form(client, f"{ADMIN}/accounts/new/", account_form(starttls_server, sender_name="First"))
    [created] = accounts(hooked_site)
    post_form(
        client,
        f"{ADMIN}/accounts/edit/?id={created.id}",
        account_form(starttls_server, sender_name="Second", new_password=""),
    )
    token = csrf_token(get(client, f"{ADMIN}/accounts/"))
    client.post(f"{ADMIN}/accounts/delete/", data={"id": created.id, "csrf_token": token})
    assert accounts(hooked_site) == []
    assert RecordingAccountsView.calls == [
        ("on_model_change", "First", "First", True),
        ("after_model_change", "First", "First", True),
        ("on_model_change", "Second", "Second", False),
        ("after_model_change", "Second", "Second", False),
        ("on_model_delete", created.id),
        ("after_model_delete", created.id),
    ]


def test_the_bulk_delete_action_calls_the_delete_hooks_per_account(
    hooked_site: AdminSite, client: t.Any, starttls_server: SMTPServer
) -> None:
    ids = [add(hooked_site, starttls_server, sender_email=f"a{n}@example.com") for n in range(2)]
    token = csrf_token(get(client, f"{ADMIN}/accounts/"))
    client.post(f"{ADMIN}/accounts/action/", data={"action": "delete", "rowid": ids, "csrf_token": token})
    assert accounts(hooked_site) == []
    assert RecordingAccountsView.calls == [
        ("on_model_delete", ids[0]),
        ("after_model_delete", ids[0]),
        ("on_model_delete", ids[1]),
        ("after_model_delete", ids[1]),
    ]


def test_a_refused_check_reaches_no_hook(
    hooked_site: AdminSite, client: t.Any, starttls_server: SMTPServer
) -> None:
    response = post_form(
        client, f"{ADMIN}/accounts/new/", account_form(starttls_server, new_password="not-the-password")
    )
    assert "The check failed at the login stage" in text_of(response.get_data(as_text=True))
    assert accounts(hooked_site) == []
    assert RecordingAccountsView.calls == []


def test_a_hook_that_refuses_leaves_the_account_as_it_was(
    hooked_site: AdminSite, client: t.Any, starttls_server: SMTPServer
) -> None:
    account_id = add(hooked_site, starttls_server, sender_name="Kept")
    RecordingAccountsView.refuse_changes = True
    response = post_form(
        client,
        f"{ADMIN}/accounts/edit/?id={account_id}",
        account_form(starttls_server, sender_name="Changed", new_password=""),
    )
    assert "Names are frozen this week." in text_of(response.get_data(as_text=True))
    assert [a.sender_name for a in accounts(hooked_site)] == ["Kept"]
    response = post_form(client, f"{ADMIN}/accounts/new/", account_form(starttls_server, sender_name="New"))
    assert "Names are frozen this week." in text_of(response.get_data(as_text=True))
    assert [a.sender_name for a in accounts(hooked_site)] == ["Kept"]
    assert [call[0] for call in RecordingAccountsView.calls] == ["on_model_change", "on_model_change"]


class BrokenDeleteView(AccountsView):
    def on_model_delete(self, model: t.Any) -> None:
        raise RuntimeError("the site's audit table is read-only")


def test_a_failing_delete_hook_keeps_the_account_and_says_flask_admins_words(
    tmp_path: Path, encryption_key: str, starttls_server: SMTPServer
) -> None:
    site = make_admin_site(
        tmp_path / "instance",
        views={"accounts": BrokenDeleteView},
        SMTP_ACCOUNTS_ENCRYPTION_KEYS=encryption_key,
    )
    client = site.app.test_client()
    client.get("/test-login/admin")
    account_id = add(site, starttls_server)
    token = csrf_token(get(client, f"{ADMIN}/accounts/"))
    response = client.post(
        f"{ADMIN}/accounts/delete/", data={"id": account_id, "csrf_token": token}, follow_redirects=True
    )
    with site.app.test_request_context():
        expected = gettext("Failed to delete record. %(error)s", error="the site's audit table is read-only")
    assert expected in text_of(response.get_data(as_text=True))
    assert [a.id for a in accounts(site)] == [account_id]
    with site.app.app_context():
        site.site.db.engine.dispose()


def test_only_a_subclass_of_a_page_may_replace_it(tmp_path: Path, encryption_key: str) -> None:
    with pytest.raises(TypeError, match="accounts: a subclass of AccountsView"):
        make_admin_site(
            tmp_path / "instance", views={"accounts": object}, SMTP_ACCOUNTS_ENCRYPTION_KEYS=encryption_key
        )
