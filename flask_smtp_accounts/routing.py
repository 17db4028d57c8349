"""The rules that choose the account for a letter.

1. Candidates: active accounts whose email equals the letter's From
   address, compared case-insensitively.
2. By default the candidate with the largest id.
3. For a bulk letter (newsletter), the candidate whose sender name equals
   the letter's display name; none equal: rule 2.
4. No candidate: Flask-Mail's own ``MAIL_*`` settings.

:func:`choose_route` applies them to a letter; it is the one place an
account is chosen, for sending, the routing preview and the API.

A letter is bulk when it carries ``List-Unsubscribe`` or ``Precedence: bulk``
(or ``list``), or when it is sent inside :func:`bulk_sending`.
"""

from __future__ import annotations

import contextlib
import functools
import typing as t
from contextvars import ContextVar
from dataclasses import dataclass
from email.utils import parseaddr

from .addresses import email_key
from .models import AccountInfo
from .settings import SettingsInfo

#: Why a route was taken; also written to the logs.
RULE_BULK_NAME = "bulk-sender-name"
RULE_LARGEST_ID = "largest-id"
RULE_NO_ACCOUNT = "no-matching-account"
RULE_DISABLED = "disabled"

RULE_TEXT = {
    RULE_BULK_NAME: "bulk letter: the account's sender name equals the letter's display name",
    RULE_LARGEST_ID: "the matching account with the largest id",
    RULE_NO_ACCOUNT: "no active account has this email: Flask-Mail's own MAIL_* settings",
    RULE_DISABLED: "routing is disabled in the settings: Flask-Mail's own MAIL_* settings",
}

_bulk: ContextVar[bool] = ContextVar("smtp_accounts_bulk", default=False)


@contextlib.contextmanager
def bulk_sending() -> t.Iterator[None]:
    """Mark every letter sent inside the block as bulk (a newsletter)::

    with bulk_sending(), mail.connect() as conn:
        for msg in newsletter:
            conn.send(msg)
    """
    token = _bulk.set(True)
    try:
        yield
    finally:
        _bulk.reset(token)


def is_bulk(headers: t.Mapping[str, str] | None) -> bool:
    """Whether a letter with these extra headers counts as bulk."""
    if _bulk.get():
        return True
    for name, value in (headers or {}).items():
        lowered = name.lower()
        if lowered == "list-unsubscribe":
            return True
        if lowered == "precedence" and str(value).strip().lower() in {"bulk", "list"}:
            return True
    return False


def split_sender(sender: str | tuple[str, str] | None) -> tuple[str, str]:
    """``(display name, address)`` of a sender in any form Flask-Mail accepts."""
    if not sender:
        return "", ""
    if isinstance(sender, tuple):
        name, address = sender
        return (name or "").strip(), (address or "").strip()
    return _parsed_sender(sender)


@functools.lru_cache(maxsize=256)
def _parsed_sender(sender: str) -> tuple[str, str]:
    """``parseaddr`` of a sender, remembered: a newsletter has one sender, and every letter asks again."""
    name, address = parseaddr(sender)
    return name.strip(), address.strip()


@dataclass(frozen=True)
class Choice:
    """The route chosen for a letter, and why."""

    account: AccountInfo | None
    rule: str
    candidates: tuple[int, ...] = ()

    @property
    def reason(self) -> str:
        return RULE_TEXT[self.rule]


def choose(candidates: t.Sequence[AccountInfo], display_name: str, bulk: bool) -> Choice:
    """Apply rules 2 to 4 to the candidates of one From address (largest id first)."""
    ids = tuple(a.id for a in candidates)
    if not candidates:
        return Choice(None, RULE_NO_ACCOUNT, ids)
    if bulk and display_name:
        for account in candidates:
            if account.sender_name and account.sender_name == display_name:
                return Choice(account, RULE_BULK_NAME, ids)
    return Choice(candidates[0], RULE_LARGEST_ID, ids)


def address_key(address: str) -> str:
    """The lookup key of a From address."""
    return email_key(address)


def choose_route(
    settings: SettingsInfo,
    candidates: t.Callable[[str, int], t.Sequence[AccountInfo]],
    sender: str | tuple[str, str],
    headers: t.Mapping[str, str] | None,
    bulk: bool | None = None,
) -> Choice:
    """The account a letter from ``sender`` goes through, and the rule that chose it.

    ``candidates(key, revision)`` gives the active accounts of an email key
    as of the settings' revision (``Directory.candidates``).
    """
    if not settings.enabled:
        return Choice(None, RULE_DISABLED)
    name, address = split_sender(sender)
    found = candidates(address_key(address), settings.revision) if address else ()
    return choose(found, name, is_bulk(headers) if bulk is None else bulk)
