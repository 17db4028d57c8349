"""The backup chain of an account, which failures move a letter on, and the From of a backup.

**Which failures move a letter on.** A connection error, a timeout, a TLS
or login failure, or a temporary (4xx) reply sends the letter to the next
account of the chain; a permanent (5xx) refusal of the letter itself stops
the chain, since another server would refuse it too
(:func:`~flask_smtp_accounts.errors.failure_kind`, which ``DeliveryError.temporary`` also asks).
Only the chosen account's own backups are tried, in their order; inactive
or missing backups are skipped. A connection-level failure also cools the
account down, in every process (``health.py``).

**From through a backup.** A backup with the same email sends the letter
as it is. A backup with another email cannot send as the original address
(its server or SPF would refuse it), so ``From`` becomes the backup's
address, keeping the letter's display name (or, without one, the backup's
sender name), and the original ``From`` goes to ``Reply-To`` so that
replies still reach it. A letter that already has a ``Reply-To`` keeps it:
the author said where replies go. The message log records both changes.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from email.utils import formataddr

import sqlalchemy as sa

from .addresses import email_key
from .errors import InvalidAccountError
from .models import AccountInfo
from .routing import split_sender
from .texts import N_, Text


def route_chain(
    primary: AccountInfo, lookup: t.Callable[[int], AccountInfo | None]
) -> t.Iterator[AccountInfo]:
    """The chosen account, then its active backups in order; ``lookup`` runs only when a backup is needed."""
    yield primary
    seen = {primary.id}
    for backup_id in primary.backup_ids:
        if backup_id in seen:
            continue
        seen.add(backup_id)
        backup = lookup(backup_id)
        if backup is not None and backup.active:
            yield backup


@dataclass(frozen=True)
class RouteHeaders:
    """How a letter leaves through one account."""

    #: The From header to write (unencoded), or ``None`` to keep the letter's.
    from_header: str | None
    #: A Reply-To header to add (unencoded), or ``None``.
    reply_to: str | None
    envelope_from: str


def route_headers(
    sender: str | tuple[str, str],
    envelope_from: str | None,
    has_reply_to: bool,
    account: AccountInfo,
) -> RouteHeaders:
    """From, Reply-To and envelope sender of a letter sent through ``account``."""
    name, address = split_sender(sender)
    if email_key(address) == email_key(account.sender_email):
        own = None if name or not account.sender_name else formataddr((account.sender_name, address))
        return RouteHeaders(own, None, envelope_from or account.sender_email)
    new_from = formataddr((name or account.sender_name, account.sender_email))
    reply_to = None if has_reply_to else formataddr((name, address))
    return RouteHeaders(new_from, reply_to, account.sender_email)


def check_backups(
    engine: sa.Engine, Account: t.Any, account_id: int | None, backup_ids: t.Sequence[int]
) -> None:
    """Refuse backup ids that name no account (or the account itself)."""
    if not backup_ids:
        return
    if account_id and account_id in backup_ids:
        raise InvalidAccountError("backup_ids", "an account cannot be its own backup")
    table = Account.__table__
    with engine.connect() as conn:
        found = set(conn.execute(sa.select(table.c.id).where(table.c.id.in_(list(backup_ids)))).scalars())
    missing = [str(i) for i in backup_ids if i not in found]
    if missing:
        raise InvalidAccountError(
            "backup_ids", Text("no-such-backup", N_("no account with id %(ids)s"), ids=", ".join(missing))
        )
