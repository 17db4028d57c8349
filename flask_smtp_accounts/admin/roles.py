"""The accounts list's "Carries" column and the take-over warning of the form, in the page's language.

What each account does is worked out by ``account_roles.py`` from the
routing rules; this module only says it and asks the directory (the
routing's own view of the accounts) for each address's candidates.
"""

from __future__ import annotations

import typing as t

from flask import g
from markupsafe import Markup, escape

from ..account_roles import BACKUP, BULK, EVERYDAY, INACTIVE, UNUSED, Role, account_roles, everyday_account
from ..routing import address_key
from .access import extension, state
from .i18n import gettext

if t.TYPE_CHECKING:
    from ..models import AccountInfo


def _candidates(key: str) -> t.Sequence[AccountInfo]:
    directory = state().directory
    return directory.candidates(key, directory.settings().revision)  # as of the accounts now


def everyday_of(address: str) -> AccountInfo | None:
    """The account that carries ``address``'s everyday letters now."""
    return everyday_account(_candidates(address_key(address)))


def roles_now() -> dict[int, list[Role]]:
    """Every account's roles, worked out once per request."""
    if "sa_roles" not in g:
        g.sa_roles = account_roles(extension().list_accounts(), _candidates)
    return t.cast("dict[int, list[Role]]", g.sa_roles)


def say_role(role: Role) -> str:
    """One role in words."""
    if role.kind == EVERYDAY:
        return gettext("everyday mail of %(address)s", address=role.address)
    if role.kind == BULK:
        return gettext("bulk mail as “%(name)s”", name=role.name)
    if role.kind == BACKUP:
        return gettext("backup of account %(id)s", id=role.other_id)
    if role.kind == UNUSED and role.other_id is not None:
        return gettext("not used: account %(id)s takes %(address)s", id=role.other_id, address=role.address)
    if role.kind == INACTIVE:
        return gettext("inactive: takes no part in routing")
    return gettext("not used")


def carries_formatter(view: t.Any, context: t.Any, model: t.Any, name: str) -> Markup:
    """The list's "Carries" cell: one line per role."""
    roles = roles_now().get(model.id, [])
    return Markup("<br>").join(
        Markup('<span class="sa-role sa-role-{}">{}</span>').format(role.kind, escape(say_role(role)))
        for role in roles
    )


def takeover_warning(before: AccountInfo | None, account: t.Any) -> str | None:
    """What to say when saving ``account`` moved its address's everyday mail to it from ``before``."""
    after = everyday_of(account.sender_email)
    if after is None or after.id != account.id or before is None or before.id == account.id:
        return None
    return gettext(
        "Account %(id)s now carries the everyday mail of %(address)s instead of account %(other)s:"
        " of the active accounts of an address, the one with the largest ID takes it.",
        id=account.id,
        address=account.sender_email,
        other=before.id,
    )
