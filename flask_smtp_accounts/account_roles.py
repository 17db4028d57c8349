"""What each account carries, by the routing rules themselves: everyday mail, bulk mail, backup, or nothing.

An admin who adds a second account for an address silently moves that
address's mail to it (the largest id wins). The accounts list says, per
account, what it carries, and the form warns when a save takes an
address's mail over. Both ask :func:`routing.choose` about the active
accounts of each address, in the order the directory gives them, so the
rules live in one place.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from .routing import address_key, choose

if t.TYPE_CHECKING:
    from .models import AccountInfo

#: Carries the letters from its address that are not bulk (and bulk ones no sender name claims).
EVERYDAY = "everyday"
#: Carries the bulk letters whose display name is its sender name.
BULK = "bulk"
#: Listed as a backup by another account.
BACKUP = "backup"
#: Active, but another account of its address carries all its mail.
UNUSED = "unused"
#: Switched off: takes no part in routing.
INACTIVE = "inactive"

Candidates = t.Callable[[str], t.Sequence["AccountInfo"]]


@dataclass(frozen=True)
class Role:
    """One thing an account does (or why it does nothing)."""

    kind: str
    #: The From address concerned (everyday, bulk, unused).
    address: str = ""
    #: The sender name of bulk letters it carries.
    name: str = ""
    #: The account it backs up (backup), or the one that takes its mail (unused).
    other_id: int | None = None


def everyday_account(candidates: t.Sequence[AccountInfo]) -> AccountInfo | None:
    """The account that carries an address's everyday letters, given its candidates (largest id first)."""
    return choose(candidates, "", bulk=False).account


def account_roles(accounts: t.Iterable[AccountInfo], candidates: Candidates) -> dict[int, list[Role]]:
    """The roles of each of ``accounts``; ``candidates(key)`` gives an address's active accounts, largest id first."""
    accounts = list(accounts)
    roles: dict[int, list[Role]] = {a.id: [] for a in accounts}
    takers: dict[str, AccountInfo | None] = {}
    for key in dict.fromkeys(address_key(a.sender_email) for a in accounts if a.active):
        found = candidates(key)
        everyday = takers[key] = everyday_account(found)
        if everyday is not None and everyday.id in roles:
            roles[everyday.id].append(Role(EVERYDAY, everyday.sender_email))
        for name in dict.fromkeys(a.sender_name for a in found if a.sender_name):
            chosen = choose(found, name, bulk=True).account
            if chosen is not None and chosen != everyday and chosen.id in roles:
                roles[chosen.id].append(Role(BULK, chosen.sender_email, name))
    for account in accounts:
        for backup_id in account.backup_ids:
            if backup_id in roles and account.active:
                roles[backup_id].append(Role(BACKUP, other_id=account.id))
    for account in accounts:
        if not account.active:
            roles[account.id] = [Role(INACTIVE)]
        elif not any(role.kind in (EVERYDAY, BULK) for role in roles[account.id]):
            taker = takers.get(address_key(account.sender_email))
            roles[account.id].insert(
                0, Role(UNUSED, account.sender_email, other_id=taker.id if taker else None)
            )
    return roles
