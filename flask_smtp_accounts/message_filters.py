"""The conditions the message log is read by: due letters, states (interrupted included), and a person's search.

Also which database errors mean "another transaction holds these rows"
(:func:`is_conflict`), the answer a claim or a prune gives by skipping them.
"""

from __future__ import annotations

import typing as t
from datetime import datetime

import sqlalchemy as sa

from .ids import parse_id
from .message_info import CLAIMED, INTERRUPTED, QUEUED, SENDING
from .models import utcnow


def due_condition(table: sa.Table, now: datetime, due_by: datetime | None = None) -> t.Any:
    """A letter a drainer may take: ``queued`` and due (by ``due_by``, default ``now``), or ``claimed`` past its lease.

    A claim past its lease belongs to a drainer that stopped before sending
    (a ``sending`` row is never due again): taking it again cannot deliver
    it twice.
    """
    return sa.or_(
        sa.and_(table.c.status == QUEUED, table.c.next_attempt_at <= (due_by or now)),
        sa.and_(table.c.status == CLAIMED, table.c.claimed_until < now),
    )


def queue_account(table: sa.Table, account_id: int) -> t.Any:
    """Letters waiting for the account ``account_id`` (the one routing chose; 0: Flask-Mail's own route)."""
    column = table.c.chosen_account_id
    return column.is_(None) if account_id == 0 else column == account_id


def in_states(table: sa.Table, statuses: t.Iterable[str], now: datetime) -> t.Any:
    """A condition for rows in any of ``statuses``, where ``sending`` is within its lease and ``interrupted`` past it."""
    statuses = list(statuses)
    stored = [s for s in statuses if s not in (SENDING, INTERRUPTED)]
    parts: list[sa.ColumnElement[bool]] = [table.c.status.in_(stored)] if stored else []
    if SENDING in statuses:
        parts.append(sa.and_(table.c.status == SENDING, table.c.claimed_until >= now))
    if INTERRUPTED in statuses:
        parts.append(
            sa.and_(
                table.c.status == SENDING,
                sa.or_(table.c.claimed_until < now, table.c.claimed_until.is_(None)),
            )
        )
    return sa.or_(*parts) if parts else sa.false()


def conditions(
    table: sa.Table,
    *,
    status: str | None = None,
    account_id: int | None = None,
    address: str | None = None,
    subject: str | None = None,
    message_id: str | None = None,
    search: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[t.Any]:
    """The WHERE conditions of the message log's filters, shared by the pages of the list and the export.

    ``status`` :data:`INTERRUPTED` selects the ``sending`` rows past their
    lease, ``sending`` the ones within it. ``account_id`` 0 selects letters
    sent through Flask-Mail's own settings; ``address`` matches the From or any recipient, ``subject``
    the subject, ``message_id`` the Message-ID (with or without its angle
    brackets), each a part being enough and case ignored (ASCII letters
    only on SQLite); ``search`` matches any of the three;
    ``since``/``until`` bound the time (UTC).
    """
    where: list[t.Any] = []
    if status:
        where.append(in_states(table, [status], utcnow()))
    if account_id is not None:
        wanted = parse_id(account_id)  # an id no database can hold names no account: nothing matches
        if wanted is None:
            where.append(sa.false())
        else:
            where.append(table.c.account_id.is_(None) if wanted == 0 else table.c.account_id == wanted)
    if address:
        where.append(_contains(address, table.c.sender, table.c.recipients, table.c.sent_from))
    if subject:
        where.append(_contains(subject, table.c.subject))
    if message_id:
        where.append(_contains(message_id.strip().strip("<>"), table.c.message_id))
    if search:
        words = search.strip()
        where.append(
            sa.or_(
                _contains(words, table.c.sender, table.c.recipients, table.c.sent_from, table.c.subject),
                _contains(words.strip("<>"), table.c.message_id),
            )
        )
    if since is not None:
        where.append(table.c.created_at >= since)
    if until is not None:
        where.append(table.c.created_at < until)
    return where


def _contains(text: str, *columns: sa.ColumnElement[t.Any]) -> sa.ColumnElement[bool]:
    """Any of ``columns`` contains ``text``, case ignored."""
    pattern = f"%{_escape_like(text.strip().lower())}%"
    return sa.or_(*(sa.func.lower(column).like(pattern, escape="\\") for column in columns))


#: SQLSTATEs of a transaction rolled back for a concurrent one: serialization failure, deadlock.
_CONFLICT_SQLSTATES = frozenset({"40001", "40P01"})
#: MySQL's error number for the same (its drivers give no SQLSTATE): deadlock.
_MYSQL_DEADLOCK = 1213


def is_conflict(error: sa.exc.DBAPIError) -> bool:
    """Whether the database gave up ``error``'s transaction because a concurrent one changed its rows."""
    orig = error.orig
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if sqlstate in _CONFLICT_SQLSTATES:
        return True
    args: tuple[t.Any, ...] = getattr(orig, "args", ())
    return bool(args) and args[0] == _MYSQL_DEADLOCK


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
