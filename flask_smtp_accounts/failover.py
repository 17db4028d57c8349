"""The backup chain of an account, the cool-down of failing accounts, and the From of a backup.

**Which failures move a letter on.** A connection error, a timeout, a TLS
or login failure, or a temporary (4xx) reply sends the letter to the next
account of the chain; a permanent (5xx) refusal of the letter itself stops
the chain, since another server would refuse it too (:func:`failure_kind`).
Only the chosen account's own backups are tried, in their order; inactive
or missing backups are skipped.

**Cool-down.** An account that failed at the connection level (connect,
TLS, login, a dropped connection or a timeout) is skipped for
``cooldown_s`` seconds, so that a dead server does not cost every letter a
full timeout. The hot path asks only this process's memory; the failure is
also written to ``smtp_accounts_health`` (one small write per failure, none
per letter, by the background writer), where :meth:`Health.report` and the
admin pages read it.

**From through a backup.** A backup with the same email sends the letter
as it is. A backup with another email cannot send as the original address
(its server or SPF would refuse it), so ``From`` becomes the backup's
address, keeping the letter's display name (or, without one, the backup's
sender name), and the original ``From`` goes to ``Reply-To`` so that
replies still reach it. A letter that already has a ``Reply-To`` keeps it:
the author said where replies go. The message log records both changes.
"""

from __future__ import annotations

import functools
import threading
import time
import typing as t
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import formataddr

import sqlalchemy as sa

from .errors import DeliveryError, InvalidAccountError
from .models import AccountInfo, Models, utcnow
from .routing import split_sender
from .texts import N_, Text
from .validation import email_key
from .writer import BackgroundWriter

#: Stages of opening a connection; a failure there says the account, not the letter, is at fault.
CONNECTION_STAGES = frozenset({"connect", "tls", "login", "cool-down"})

_remembered_split = functools.lru_cache(maxsize=1024)(split_sender)


def parse_sender(sender: t.Any) -> tuple[str, str]:
    """``routing.split_sender``, remembered: a newsletter parses its one From address once, not per letter."""
    try:
        return _remembered_split(sender)
    except TypeError:  # an unhashable sender, e.g. a list
        return split_sender(sender)

CONNECTION = "connection"
TEMPORARY = "temporary"
PERMANENT = "permanent"


def failure_kind(err: DeliveryError) -> str:
    """``connection``, ``temporary`` or ``permanent``: what a failure says about trying elsewhere.

    ``connection``: the account could not carry anything (cool it down, try
    the next); ``temporary``: a 4xx reply about this letter (try the next);
    ``permanent``: a 5xx refusal of the letter (stop).
    """
    if err.stage in CONNECTION_STAGES or err.code is None or err.code == 421:
        return CONNECTION
    if 400 <= err.code < 500:
        return TEMPORARY
    return PERMANENT


def route_chain(primary: AccountInfo, lookup: t.Callable[[int], AccountInfo | None]) -> t.Iterator[AccountInfo]:
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
    name, address = parse_sender(sender)
    if email_key(address) == email_key(account.sender_email):
        own = None if name or not account.sender_name else formataddr((account.sender_name, address))
        return RouteHeaders(own, None, envelope_from or account.sender_email)
    new_from = formataddr((name or account.sender_name, account.sender_email))
    reply_to = None if has_reply_to else formataddr((name, address))
    return RouteHeaders(new_from, reply_to, account.sender_email)


@dataclass(frozen=True)
class AccountHealth:
    """An account's last connection-level failure, as every process sees it."""

    account_id: int
    failures: int
    last_failed_at: datetime | None
    cooldown_until: datetime | None
    last_stage: str | None
    last_code: int | None
    last_error: str | None

    @property
    def cooling_down(self) -> bool:
        """Whether routing skips the account now (in the process that saw the failure)."""
        return self.cooldown_until is not None and self.cooldown_until > utcnow()


class Health:
    """Which accounts are cooling down: in memory for routing, in a table for everyone else."""

    def __init__(self, models: Models, engine: t.Callable[[], sa.Engine], writer: BackgroundWriter) -> None:
        self._engine = engine
        self._writer = writer
        self._table = models.Health.__table__
        self._lock = threading.Lock()
        self._cooling: dict[int, tuple[float, DeliveryError]] = {}

    def cooling(self, account_id: int) -> DeliveryError | None:
        """The error to report instead of trying the account, while it cools down."""
        entry = self._cooling.get(account_id)
        if entry is None:
            return None
        until, err = entry
        left = until - time.monotonic()
        if left <= 0:
            with self._lock:
                self._cooling.pop(account_id, None)
            return None
        return DeliveryError(
            "cool-down",
            f"skipped for {left:.0f} more s after a failure: {err}",
            account_id=account_id, host=err.host, port=err.port,
        )

    def failed(self, account: AccountInfo, err: DeliveryError, cooldown_s: int) -> None:
        """Remember a connection-level failure; cool the account down for ``cooldown_s`` seconds."""
        if err.stage == "cool-down":
            return
        if cooldown_s > 0:
            with self._lock:
                self._cooling[account.id] = (time.monotonic() + cooldown_s, err)
        now = utcnow()
        values = {
            "last_failed_at": now,
            "cooldown_until": now + timedelta(seconds=cooldown_s) if cooldown_s > 0 else None,
            "last_stage": err.stage,
            "last_code": err.code,
            "last_error": str(err)[:2000],
        }
        table = self._table
        update = table.update().where(table.c.account_id == account.id).values(failures=table.c.failures + 1, **values)
        insert = table.insert().values(account_id=account.id, failures=1, **values)

        def note(conn: sa.Connection) -> None:
            if not conn.execute(update).rowcount:
                conn.execute(insert)

        self._writer.submit(self._engine(), note)

    def forget(self, account_id: int | None = None) -> None:
        """End cool-downs in this process (all, or one account's), e.g. after fixing a server."""
        with self._lock:
            if account_id is None:
                self._cooling.clear()
            else:
                self._cooling.pop(account_id, None)

    def report(self) -> dict[int, AccountHealth]:
        """Every account's last failure and cool-down, read from the table."""
        self._writer.drain()
        with self._engine().connect() as conn:
            rows = conn.execute(sa.select(self._table)).mappings().all()
        return {row["account_id"]: AccountHealth(**row) for row in rows}


def check_backups(engine: sa.Engine, Account: t.Any, account_id: int | None, backup_ids: t.Sequence[int]) -> None:
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
        raise InvalidAccountError("backup_ids", Text("no-such-backup", N_("no account with id %(ids)s"), ids=", ".join(missing)))
