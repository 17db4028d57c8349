"""Every error in one tree: what a missing row raises, field errors, and one answer to "does it move on?"."""

from __future__ import annotations

import contextlib
import inspect
import re
import typing as t

import pytest
from flask_mail import Message
from misbehaving import Refuse, ScriptedServer
from test_readme import section

from flask_smtp_accounts import (
    AccountCheckFailed,
    AccountNotFoundError,
    AlertChannelNotFoundError,
    DeliveryError,
    FieldError,
    InvalidAccountError,
    InvalidSettingError,
    LogNotFoundError,
    MessageNotFoundError,
    NotFoundError,
    SignInError,
    SMTPAccountsError,
    UnknownFieldError,
    errors,
)
from flask_smtp_accounts.errors import CONNECTION, PERMANENT, TEMPORARY, failure_kind
from flask_smtp_accounts.extension import AccountCheckFailed as AccountCheckFailedOfExtension
from flask_smtp_accounts.oauth2_sign_in import SignInError as SignInErrorOfSignIn
from flask_smtp_accounts.testing import SMTPServer

MISSING = 987654

# --- a missing row ---------------------------------------------------------------------------

MISSING_CALLS: dict[str, tuple[t.Callable[[t.Any], object], type[NotFoundError], str]] = {
    "get_account": (
        lambda ext: ext.get_account(MISSING),
        AccountNotFoundError,
        f"There is no SMTP account with id {MISSING}.",
    ),
    "update_account": (
        lambda ext: ext.update_account(MISSING, sender_name="Shop"),
        AccountNotFoundError,
        f"There is no SMTP account with id {MISSING}.",
    ),
    "delete_account": (
        lambda ext: ext.delete_account(MISSING),
        AccountNotFoundError,
        f"There is no SMTP account with id {MISSING}.",
    ),
    "an id that is no id": (
        lambda ext: ext.get_account("12abc"),
        AccountNotFoundError,
        "There is no SMTP account with id 12abc.",
    ),
    "get_message": (
        lambda ext: ext.get_message(MISSING),
        MessageNotFoundError,
        f"There is no message {MISSING} in the message log.",
    ),
    "resend_message": (
        lambda ext: ext.resend_message(MISSING),
        MessageNotFoundError,
        f"There is no message {MISSING} in the message log.",
    ),
    "alerts.channel": (
        lambda ext: ext.alerts.channel(MISSING),
        AlertChannelNotFoundError,
        f"There is no alert channel with id {MISSING}.",
    ),
    "alerts.remove_channel": (
        lambda ext: ext.alerts.remove_channel(MISSING),
        AlertChannelNotFoundError,
        f"There is no alert channel with id {MISSING}.",
    ),
    "read_log": (
        lambda ext: ext.read_log(MISSING, "send"),
        LogNotFoundError,
        f"There is no send log for account {MISSING}.",
    ),
}


@pytest.mark.parametrize("call", sorted(MISSING_CALLS))
def test_a_missing_row_is_both_a_lookup_error_and_the_extension_s_own(ext: t.Any, call: str) -> None:
    do, kind, message = MISSING_CALLS[call]

    with pytest.raises(LookupError) as as_lookup:
        do(ext)
    with pytest.raises(SMTPAccountsError) as as_own:
        do(ext)

    for raised in (as_lookup.value, as_own.value):
        assert type(raised) is kind and isinstance(raised, NotFoundError)
        assert str(raised) == message


# --- field errors --------------------------------------------------------------------------


def test_an_invalid_account_and_an_invalid_setting_are_one_kind_of_error_naming_the_field(
    ext: t.Any, smtp_server: SMTPServer
) -> None:
    with pytest.raises(FieldError) as account:
        ext.add_account(
            check=False, sender_email="shop@example.com", host=smtp_server.host, port=0, auth="none"
        )
    with pytest.raises(FieldError) as setting:
        ext.update_settings(timeout_s=0)

    assert isinstance(account.value, InvalidAccountError) and account.value.field == "port"
    assert isinstance(setting.value, InvalidSettingError) and setting.value.field == "timeout_s"
    assert ext.Account.query.count() == 0


@pytest.mark.parametrize("how", ["add", "update"])
def test_an_unknown_account_field_is_a_field_error_and_still_a_type_error(
    ext: t.Any, smtp_server: SMTPServer, how: str
) -> None:
    fields = {"sender_email": "shop@example.com", "host": smtp_server.host, "port": smtp_server.port}
    saved = ext.add_account(check=False, auth="none", **fields)

    with pytest.raises(InvalidAccountError) as raised:
        if how == "add":
            ext.add_account(check=False, auth="none", colour="red", size=3, **fields)
        else:
            ext.update_account(saved.id, check=False, colour="red", size=3)

    assert isinstance(raised.value, UnknownFieldError) and isinstance(raised.value, TypeError)
    assert (raised.value.field, raised.value.names) == ("colour, size", ("colour", "size"))
    assert str(raised.value) == "colour, size: no such account field"
    assert ext.Account.query.count() == 1


@pytest.mark.one_database
def test_the_errors_moved_into_errors_py_are_still_importable_where_they_were() -> None:
    assert AccountCheckFailedOfExtension is AccountCheckFailed is errors.AccountCheckFailed
    assert SignInErrorOfSignIn is SignInError is errors.SignInError


# --- does a failure move the letter on? ------------------------------------------------------

SENDER = "shop@example.com"
LONE = "lone@example.com"


def _failing(stack: contextlib.ExitStack, how: str) -> dict[str, t.Any]:
    """The fields of an account on a server that fails the letter as ``how`` says."""
    if how == "login without a code":
        # A challenge that is not base64: the login fails with no reply code at all.
        server: t.Any = stack.enter_context(ScriptedServer(auth_challenge="334 abc"))
        return {"host": server.host, "port": server.port, "auth": "login", "login": "shop", "password": "pw"}
    command, reply = {"451 on MAIL": ("MAIL", "451 4.3.0 Busy"), "554 on DATA": ("DATA", "554 5.7.1 Spam")}[
        how
    ]
    server = stack.enter_context(SMTPServer(handler_hooks=Refuse(command, reply)))
    return {"host": server.host, "port": server.port, "auth": "none"}


@pytest.mark.parametrize(
    ("how", "kind"),
    [("login without a code", CONNECTION), ("451 on MAIL", TEMPORARY), ("554 on DATA", PERMANENT)],
)
def test_the_error_says_it_is_temporary_exactly_when_the_letter_moves_on_to_the_backup(
    ext: t.Any, mail: t.Any, make_smtp_server: t.Any, how: str, kind: str
) -> None:
    backup_server = make_smtp_server()
    backup = ext.add_account(
        check=False,
        sender_email="backup@example.com",
        host=backup_server.host,
        port=backup_server.port,
        security="none",
        auth="none",
    )
    with contextlib.ExitStack() as stack:
        failing = _failing(stack, how)
        ext.add_account(check=False, security="none", sender_email=SENDER, backup_ids=[backup.id], **failing)
        ext.add_account(check=False, security="none", sender_email=LONE, **failing)

        moved_on = True
        try:
            mail.send(Message("Order 1", sender=SENDER, recipients=["ann@example.org"], body="Thanks."))
        except DeliveryError:
            moved_on = False
        with pytest.raises(DeliveryError) as alone:
            mail.send(Message("Order 2", sender=LONE, recipients=["ann@example.org"], body="Thanks."))

    assert [m.message["Subject"] for m in backup_server.received] == (["Order 1"] if moved_on else [])
    assert moved_on == (kind != PERMANENT)
    assert failure_kind(alone.value) == kind
    assert alone.value.temporary is moved_on


# --- the README lists the tree --------------------------------------------------------------


def _tree(cls: type, depth: int = 0) -> list[str]:
    """``cls`` and its subclasses in ``errors.py`` as README list lines, each with its docstring's first line."""
    also = [
        base.__name__ if base.__module__ == "builtins" else f"{base.__module__}.{base.__name__}"
        for base in cls.__bases__
        if not issubclass(base, SMTPAccountsError) and base is not Exception
    ]
    line = f"{'  ' * depth}- `{cls.__name__}`" + (f" (also `{'`, `'.join(also)}`)" if also else "")
    line += ": " + (inspect.getdoc(cls) or "").splitlines()[0].replace("``", "`")
    subclasses: list[type] = cls.__subclasses__()
    children = sorted((c for c in subclasses if c.__module__ == errors.__name__), key=lambda c: c.__name__)
    return [line] + [row for child in children for row in _tree(child, depth + 1)]


@pytest.mark.one_database
def test_the_readme_lists_every_error_of_errors_py_as_one_tree() -> None:
    listed = re.findall(r"^ *- `.*$", section("Errors"), re.M)
    assert listed == _tree(SMTPAccountsError)
    defined = {
        obj for obj in vars(errors).values() if isinstance(obj, type) and issubclass(obj, BaseException)
    }
    assert {c for c in defined if not issubclass(c, SMTPAccountsError)} == set()
