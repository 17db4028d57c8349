"""The accounts as frozen copies (``list_accounts``), one way to name an account, and ``mail=`` retired.

The command line and the admin pages are thin faces of the Python API: they
read accounts through ``list_accounts`` and never query the ORM themselves,
and every place that names an account takes the words from ``labels.py``.
"""

from __future__ import annotations

import ast
import dataclasses
import pathlib
import typing as t

import pytest
from apps import database_url
from cryptography.fernet import Fernet
from flask import Flask
from flask_mail import Mail
from flask_sqlalchemy import SQLAlchemy

import flask_smtp_accounts
from flask_smtp_accounts import SMTPAccounts
from flask_smtp_accounts.models import AccountInfo
from flask_smtp_accounts.testing import PASSWORD, SMTPServer

PACKAGE = pathlib.Path(flask_smtp_accounts.__file__).parent


def test_list_accounts_gives_frozen_copies_in_id_order_without_secrets(
    ext: SMTPAccounts, add_account: t.Callable[..., t.Any], auth_server: SMTPServer
) -> None:
    first = add_account(auth_server, sender_email="b@example.com", sender_name="Shop").id
    second = add_account(auth_server, sender_email="a@example.com", active=False).id
    third = add_account(auth_server, sender_email="c@example.com").id

    listed = ext.list_accounts()

    assert [(a.id, a.sender_email, a.active) for a in listed] == [
        (first, "b@example.com", True),
        (second, "a@example.com", False),
        (third, "c@example.com", True),
    ]
    assert all(isinstance(a, AccountInfo) for a in listed)
    with pytest.raises(dataclasses.FrozenInstanceError):
        listed[0].sender_name = "Changed"  # type: ignore[misc]
    assert [a.label for a in listed] == ["Shop <b@example.com>", "a@example.com", "c@example.com"]
    encrypted = listed[0].password_encrypted
    assert encrypted is not None and PASSWORD not in repr(listed) and encrypted not in repr(listed)
    assert [a.id for a in ext.list_accounts([third, first, 999])] == [first, third]


def test_list_accounts_reads_what_another_session_committed(
    ext: SMTPAccounts, add_account: t.Callable[..., t.Any], auth_server: SMTPServer
) -> None:
    account_id = add_account(auth_server, sender_name="Before").id
    assert [a.sender_name for a in ext.list_accounts()] == ["Before"]
    ext.update_account(account_id, check=False, sender_name="After")
    assert [a.sender_name for a in ext.list_accounts()] == ["After"]


def _source_files(*parts: str) -> list[pathlib.Path]:
    return [path for part in parts for path in sorted(PACKAGE.glob(part))]


@pytest.mark.one_database
def test_the_command_line_and_the_admin_pages_never_query_the_orm() -> None:
    """Each reads accounts through the API (``list_accounts``, ``get_account``), never a query of its own."""
    found = []
    for path in _source_files("cli/*.py", "admin/*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("query", "session", "scalars"):
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} .{node.attr}")
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "attr", getattr(node.func, "id", "")) == "select"
            ):
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} select()")
    assert found == []


@pytest.mark.one_database
def test_an_account_label_is_built_in_one_place_only() -> None:
    """No module but ``labels.py`` puts a sender name and an email together, or words a deleted account."""
    found = []
    for path in _source_files("*.py", "admin/*.py", "cli/*.py", "oauth2/*.py"):
        if path.name == "labels.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.JoinedStr):
                names = {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
                if {"sender_name", "sender_email"} <= names:
                    found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and "(deleted)" in node.value:
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.value!r}")
    assert found == []


def test_mail_argument_is_ignored_with_a_deprecation_warning(tmp_path: pathlib.Path) -> None:
    app = Flask("old_site", instance_path=str(tmp_path))
    app.config.update(
        SQLALCHEMY_DATABASE_URI=database_url(tmp_path),
        SMTP_ACCOUNTS_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        SMTP_ACCOUNTS_REGISTER_CLI=False,
    )
    db = SQLAlchemy(app)
    mail = Mail(app)
    try:
        with pytest.warns(DeprecationWarning, match=r"SMTPAccounts\(mail=\.\.\.\) is not needed") as caught:
            ext = SMTPAccounts(app, db=db, mail=mail)
        assert caught[0].filename == __file__, "the warning points at the site's line, not the extension's"
        assert app.extensions["smtp_accounts"].ext is ext
        with pytest.warns(DeprecationWarning, match="Remove the argument"):
            SMTPAccounts(mail=mail)
    finally:
        with app.app_context():
            db.engine.dispose()
