"""Sending limits per account: letters a minute, an hour and a day, and recipients a day, held by every process.

Providers block an account pushed past its cap (Microsoft 365: 30 letters
a minute; Google Workspace: 2,000 letters and 10,000 recipients a day), and
a site may send from many processes on many machines. So the limits are
counted in the database: every letter sent through a limited account first
*reserves* a row of ``smtp_accounts_quota_usage`` (:meth:`Quotas.reserve`),
and a reservation that would put more letters (or recipients) into any
window than the account allows is refused with
:class:`~flask_smtp_accounts.errors.QuotaExceededError`, which says when the
next slot frees.

**Windows slide.** A limit holds for *every* window of its length, not for
calendar minutes: no 60 s ever holds more than ``limit_per_minute``
letters, no 3,600 s more than ``limit_per_hour``, no 24 h more than
``limit_per_day`` letters or ``recipient_limit_per_day`` envelope
recipients. A row counts from the moment its letter's transaction ended
(:meth:`Quotas.finish`); while the letter is on its way the row counts in
every window, so the limits hold for the times the server received the
letters, however long each send took. A reservation whose letter reached no
server (the connection failed, MAIL or RCPT was refused) is deleted again.

**One at a time per account.** A reservation counts and adds its row
inside one transaction that first locks the account's row of
``smtp_accounts_quota_lock`` (``SELECT … FOR UPDATE`` on PostgreSQL and
MySQL/MariaDB; on SQLite, which locks the whole database at a
transaction's first write, an ``UPDATE`` of that row comes first). So two
processes never both take the last slot. Machines' clocks must agree (NTP),
as for the message log's leases.

An account without limits costs nothing: :meth:`Quotas.reserve` returns
without a statement. A reservation prunes its account's rows older than a
day (the longest window) as it goes; the retry run prunes those of every
account (:meth:`Quotas.prune`).
"""

from __future__ import annotations

import logging
import typing as t
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from .errors import DeliveryError, QuotaExceededError
from .health import _UPSERT_INSERTS
from .message_rows import LEASE
from .models import AccountInfo, Models, utcnow
from .validation import LIMITS

logger = logging.getLogger("flask_smtp_accounts")

#: Each letter limit and the length of its window.
LETTER_WINDOWS = (
    ("limit_per_minute", timedelta(minutes=1)),
    ("limit_per_hour", timedelta(hours=1)),
    ("limit_per_day", timedelta(days=1)),
)
#: The window of ``recipient_limit_per_day``, and the longest a usage row is kept.
DAY = timedelta(days=1)
#: How far ahead a letter being sent is counted: past the longest a send can take (the message log's
#: lease), so that it counts in every window until its transaction ends and :meth:`Quotas.finish` dates it.
IN_FLIGHT = LEASE


@dataclass(frozen=True)
class Reservation:
    """A slot taken for one letter on one account: its usage row."""

    account_id: int
    usage_id: int


@dataclass(frozen=True)
class Usage:
    """What an account sent in the last 24 hours, as its limits count it."""

    letters: int = 0
    recipients: int = 0


def is_limited(account: t.Any) -> bool:
    """Whether any limit is set on ``account`` (only then are its letters counted)."""
    return any(getattr(account, name) for name in LIMITS)


def today_figures(account: t.Any, usage: Usage | None) -> tuple[str, str | None] | None:
    """An account's use of the last 24 hours against its daily limits: ``("12 / 500", "30 / 10000")``.

    The second part is ``None`` without a recipient limit; a letter count
    without a daily letter limit stands alone (``"12"``). ``None`` for an
    account without limits: its letters are not counted.
    """
    if not is_limited(account):
        return None
    usage = usage or Usage()
    letters = f"{usage.letters} / {account.limit_per_day}" if account.limit_per_day else str(usage.letters)
    limit = account.recipient_limit_per_day
    return letters, f"{usage.recipients} / {limit}" if limit else None


def waits_for_slot(err: DeliveryError | None, account: AccountInfo) -> bool:
    """Whether a queued letter that found ``account`` at a limit waits for its slot rather than trying backups.

    ``over_limit="wait"``: it goes back to the queue at the error's
    ``retry_at`` (``retry.settle``). A letter sent inline tries the
    backups whatever the setting: its caller is waiting.
    """
    return (
        isinstance(err, QuotaExceededError)
        and err.account_id == account.id
        and err.retry_at is not None
        and account.over_limit == "wait"
    )


def reached_server(err: BaseException) -> bool:
    """Whether a failed send may have put the letter on the server: anything but a refusal before DATA.

    A connection that could not be opened, and a transaction stopped at
    MAIL or RCPT, sent nothing of the letter; anything else may have.
    """
    if isinstance(err, DeliveryError):
        return err.stage == "send" and err.command not in ("MAIL", "RCPT")
    return True


class Quotas:
    """Reads and writes ``smtp_accounts_quota_usage`` and ``smtp_accounts_quota_lock`` for one app."""

    def __init__(self, models: Models, engine: t.Callable[[], sa.Engine]) -> None:
        self._engine = engine
        self._usage = models.QuotaUsage.__table__
        self._lock = models.QuotaLock.__table__

    # --- sending ------------------------------------------------------------

    def reserve(
        self, account: AccountInfo, recipients: int, now: datetime | None = None
    ) -> Reservation | None:
        """Take a slot for a letter to ``recipients`` envelope recipients; ``None`` when ``account`` has no limit.

        Raises :class:`QuotaExceededError` when the letter would break a
        limit now; nothing is written then.
        """
        if not is_limited(account):
            return None
        at = now
        usage = self._usage
        engine = self._engine()
        with engine.connect() as conn:
            if engine.dialect.name != "sqlite":
                # Each statement sees what the lock's previous holder committed, whatever the site's default.
                conn.execution_options(isolation_level="READ COMMITTED")
            with conn.begin():
                self._take_lock(conn, account.id)
                # Read once the lock is held, so that it is later than every earlier holder's reservation.
                now = at or utcnow()
                refusal = self._refusal(conn, account, recipients, now)
                if refusal is not None:
                    raise refusal
                conn.execute(
                    usage.delete().where(usage.c.account_id == account.id, usage.c.used_at <= now - DAY)
                )
                key = conn.execute(
                    usage.insert().values(
                        account_id=account.id, reserved_at=now, used_at=now + IN_FLIGHT, recipients=recipients
                    )
                ).inserted_primary_key
        assert key is not None
        return Reservation(account.id, int(key[0]))

    def finish(self, reservation: Reservation | None, *, reached: bool, now: datetime | None = None) -> None:
        """End a reservation: count the letter from now (``reached``), or free its slot (nothing was sent).

        A failure to write is logged, not raised: the letter's own outcome
        matters more, and a row left in flight only counts until its time
        (:data:`IN_FLIGHT`) passes.
        """
        if reservation is None:
            return
        usage = self._usage
        row = usage.c.id == reservation.usage_id
        statement = (
            usage.update().where(row).values(used_at=now or utcnow())
            if reached
            else usage.delete().where(row)
        )
        try:
            with self._engine().begin() as conn:
                conn.execute(statement)
        except sa.exc.SQLAlchemyError:
            logger.exception(
                "flask-smtp-accounts could not end the quota reservation of account %s",
                reservation.account_id,
            )

    def prune(self, now: datetime | None = None) -> int:
        """Delete every account's usage rows older than a day (also those of accounts no longer limited)."""
        usage = self._usage
        with self._engine().begin() as conn:
            return int(
                conn.execute(usage.delete().where(usage.c.used_at <= (now or utcnow()) - DAY)).rowcount
            )

    # --- reading ------------------------------------------------------------

    def today(self, account_ids: t.Iterable[int], now: datetime | None = None) -> dict[int, Usage]:
        """Letters and recipients counted in the last 24 hours, for each of ``account_ids`` (one query)."""
        ids = sorted(set(account_ids))
        if not ids:
            return {}
        usage = self._usage
        query = (
            sa.select(usage.c.account_id, sa.func.count(), sa.func.sum(usage.c.recipients))
            .where(usage.c.account_id.in_(ids), usage.c.used_at > (now or utcnow()) - DAY)
            .group_by(usage.c.account_id)
        )
        with self._engine().connect() as conn:
            return {row[0]: Usage(int(row[1]), int(row[2] or 0)) for row in conn.execute(query)}

    # --- inside a reservation -------------------------------------------------

    def _take_lock(self, conn: sa.Connection, account_id: int) -> None:
        """Lock the account's row of the lock table (made on first use) until the transaction ends."""
        now = utcnow()
        lock = self._lock
        mine = lock.c.account_id == account_id
        if conn.dialect.name == "sqlite":
            # SQLite takes its lock at a transaction's first write, not at a read: write first.
            if conn.execute(lock.update().where(mine).values(locked_at=now)).rowcount == 1:
                return
        elif conn.execute(sa.select(lock.c.account_id).where(mine).with_for_update()).first() is not None:
            return
        insert = _UPSERT_INSERTS[conn.dialect.name](lock).values(account_id=account_id, locked_at=now)
        if conn.dialect.name in ("mysql", "mariadb"):
            conn.execute(insert.on_duplicate_key_update(locked_at=now))  # locks the row, new or not
        else:
            conn.execute(insert.on_conflict_do_nothing())
            if conn.dialect.name != "sqlite":  # another transaction made the row first: wait for it
                conn.execute(sa.select(lock.c.account_id).where(mine).with_for_update())

    def _refusal(
        self, conn: sa.Connection, account: AccountInfo, recipients: int, now: datetime
    ) -> QuotaExceededError | None:
        """The error of the limit a letter to ``recipients`` recipients would break now, or ``None``."""
        usage = self._usage
        mine = usage.c.account_id == account.id
        windows = [(name, window) for name, window in LETTER_WINDOWS if getattr(account, name)]
        recipient_limit = account.recipient_limit_per_day
        widest = DAY if recipient_limit else max(window for _, window in windows)
        columns: list[sa.ColumnElement[t.Any]] = [
            sa.func.count(sa.case((usage.c.used_at > now - window, 1))) for _, window in windows
        ]
        columns.append(sa.func.coalesce(sa.func.sum(usage.c.recipients), 0))
        counted = conn.execute(sa.select(*columns).where(mine, usage.c.used_at > now - widest)).one()
        waits: list[tuple[datetime | None, str, int]] = []
        for (name, window), letters in zip(windows, counted, strict=False):
            allowed = getattr(account, name)
            if letters >= allowed:
                # The letter fits once the allowed-th newest letter of the window has left it.
                newest = (
                    sa.select(usage.c.used_at)
                    .where(mine, usage.c.used_at > now - window)
                    .order_by(usage.c.used_at.desc(), usage.c.id.desc())
                    .offset(allowed - 1)
                    .limit(1)
                )
                waits.append((min(conn.execute(newest).scalar_one(), now) + window, name, allowed))
        if recipient_limit:
            excess = int(counted[-1]) + recipients - recipient_limit
            if recipients > recipient_limit:
                waits.append((None, "recipient_limit_per_day", recipient_limit))
            elif excess > 0:
                waits.append(
                    (
                        self._recipients_free(conn, account.id, excess, now),
                        "recipient_limit_per_day",
                        recipient_limit,
                    )
                )
        if not waits:
            return None
        never = [w for w in waits if w[0] is None]
        retry_at, name, allowed = never[0] if never else max(waits, key=lambda w: t.cast(datetime, w[0]))
        return QuotaExceededError(account.id, name, allowed, retry_at, host=account.host, port=account.port)

    def _recipients_free(self, conn: sa.Connection, account_id: int, excess: int, now: datetime) -> datetime:
        """When enough of the day's recipients have left the 24 h window for ``excess`` more to fit."""
        usage = self._usage
        freed = sa.func.sum(usage.c.recipients).over(order_by=(usage.c.used_at, usage.c.id))
        rows = (
            sa.select(usage.c.used_at, freed.label("freed"))
            .where(usage.c.account_id == account_id, usage.c.used_at > now - DAY)
            .subquery()
        )
        query = sa.select(rows.c.used_at).where(rows.c.freed >= excess).order_by(rows.c.freed).limit(1)
        oldest: datetime = conn.execute(query).scalar_one()
        return min(oldest, now) + DAY
