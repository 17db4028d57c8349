"""Counts of the message log for the dashboard and the weekly summary, as SQL aggregates.

Every figure is one aggregate query over ``smtp_accounts_message`` (and a
read of ``smtp_accounts_health``); no letter's row is loaded into Python.
The counts are ``count(*)`` over exact ranges of two indexes,
``(status, account_id, created_at)`` per route and ``(status, created_at)``
for the chart, so the database steps through index entries and neither
reads a row nor sorts: grouping a million rows by a computed bucket costs
several times more. Time spans are ranges of ``created_at``, the same SQL
on SQLite, PostgreSQL and MariaDB (unlike their date functions).
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from .labels import account_label, route_label
from .message_info import CANCELLED, CLAIMED, FAILED, QUEUED, SENT, SUPPRESSED
from .models import Models, utcnow

#: The statuses of a letter still waiting: queued, or claimed by a drainer that has not begun it.
WAITING = (QUEUED, CLAIMED)

#: The windows of the counts, longest last: name -> length.
WINDOWS: dict[str, timedelta] = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
#: The chart of each window: how many bars, each this long.
CHART_STEPS: dict[str, tuple[int, timedelta]] = {
    "24h": (24, timedelta(hours=1)),
    "7d": (7, timedelta(days=1)),
    "30d": (30, timedelta(days=1)),
}


@dataclass
class Counts:
    """Letters sent (suppressed ones included), failed, waiting (queued or claimed) and cancelled.

    A cancelled letter was neither sent nor refused, and no longer waits:
    it counts apart, never as queued or failed.
    """

    sent: int = 0
    failed: int = 0
    queued: int = 0
    cancelled: int = 0

    def add(self, status: str, count: int) -> None:
        if status in (SENT, SUPPRESSED):
            self.sent += count
        elif status == FAILED:
            self.failed += count
        elif status in WAITING:
            self.queued += count
        elif status == CANCELLED:
            self.cancelled += count


@dataclass
class AccountCounts:
    """One route's counts per window; ``account_id`` ``None``: Flask-Mail's own settings."""

    account_id: int | None
    label: str
    windows: dict[str, Counts] = field(default_factory=lambda: {name: Counts() for name in WINDOWS})


@dataclass(frozen=True)
class Bar:
    """One bar of the chart: letters sent and failed from ``start`` for one step."""

    start: datetime
    sent: int
    failed: int


@dataclass(frozen=True)
class Failure:
    """The last failed letter of a route."""

    account_id: int | None
    label: str
    record_id: int
    at: datetime
    stage: str | None
    code: int | None
    reply: str | None
    error: str | None


@dataclass(frozen=True)
class AccountTrouble:
    """An account that routing skips (cool-down) or whose OAuth2 token was refused."""

    account_id: int
    label: str
    since: datetime | None
    until: datetime | None
    error: str | None


#: The statuses the counts tell apart (``sending`` rows are counted once they settle).
COUNTED = (SENT, SUPPRESSED, FAILED, *WAITING, CANCELLED)


def _range_count(*conditions: t.Any) -> t.Any:
    """``(SELECT count(*) ... WHERE conditions)``: one range of an index, counted without reading a row."""
    return sa.select(sa.func.count()).where(*conditions).scalar_subquery()


class MailStats:
    """Reads the aggregates for one app's tables."""

    def __init__(self, models: Models, engine: t.Callable[[], sa.Engine]) -> None:
        self._engine = engine
        self.messages = models.Message.__table__
        self.health = models.Health.__table__
        self.accounts = models.Account.__table__

    def labels(self, conn: sa.Connection) -> dict[int, str]:
        a = self.accounts
        rows = conn.execute(sa.select(a.c.id, a.c.sender_name, a.c.sender_email))
        return {row.id: account_label(row.sender_name, row.sender_email) for row in rows}

    def route_ids(self) -> t.Any:
        """The distinct ``account_id`` values of the log, as a recursive CTE: one index seek per route.

        A "loose index scan": each step asks the ``account_id`` index for
        the next larger id, so the cost grows with the routes, not the rows.
        """
        m = self.messages
        later = m.alias("later")
        first = sa.select(sa.func.min(m.c.account_id).label("id")).cte("route_ids", recursive=True)
        after = (
            sa.select(sa.func.min(later.c.account_id))
            .where(later.c.account_id > first.c.id)
            .scalar_subquery()
        )
        return first.union_all(sa.select(after).where(first.c.id.is_not(None)))

    def counts(self, now: datetime | None = None) -> tuple[dict[str, Counts], list[AccountCounts]]:
        """Totals and per-route counts for every window.

        For each status and route (Flask-Mail's own settings included), one
        counted range of the index ``(status, account_id, created_at)`` per
        window: the database steps through index entries and reads no row
        and sorts nothing.
        """
        now = now or utcnow()
        m = self.messages
        names = list(WINDOWS)
        statuses = sa.union_all(*[sa.select(sa.literal(s).label("status")) for s in COUNTED]).cte("statuses")
        ids = self.route_ids()

        def windows(route: t.Any) -> list[t.Any]:
            return [
                _range_count(m.c.status == statuses.c.status, route, m.c.created_at >= now - WINDOWS[n])
                for n in names
            ]

        query = sa.union_all(
            sa.select(statuses.c.status, ids.c.id, *windows(m.c.account_id == ids.c.id))
            .select_from(statuses.join(ids, sa.true()))
            .where(ids.c.id.is_not(None)),
            sa.select(statuses.c.status, sa.null(), *windows(m.c.account_id.is_(None))),
        )
        with self._engine().connect() as conn:
            rows = conn.execute(query).all()
            labels = self.labels(conn)
        total = {name: Counts() for name in names}
        routes: dict[int | None, AccountCounts] = {}
        for status, account_id, *counts in rows:
            if not any(counts):
                continue
            route = routes.get(account_id)
            if route is None:
                route = routes[account_id] = AccountCounts(account_id, route_label(account_id, labels))
            for name, count in zip(names, counts, strict=True):
                route.windows[name].add(status, int(count))
                total[name].add(status, int(count))
        ordered = sorted(routes.values(), key=lambda r: (r.account_id is not None, r.account_id or 0))
        return total, ordered

    def chart(self, window: str, now: datetime | None = None) -> list[Bar]:
        """The bars of ``window`` (``24h``: per hour, ``7d``/``30d``: per day), oldest first.

        Two counted ranges of the index ``(status, created_at)`` per bar
        (sent or suppressed, and failed), joined by ``UNION ALL``.
        """
        steps, step = CHART_STEPS[window]
        now = now or utcnow()
        end = _next_boundary(now, step)
        starts = [end - step * (steps - i) for i in range(steps)]
        m = self.messages

        def bar(index: int, start: datetime) -> t.Any:
            span = (m.c.created_at >= start, m.c.created_at < start + step)
            return sa.select(
                sa.literal(index).label("bar"),
                _range_count(m.c.status.in_((SENT, SUPPRESSED)), *span).label("sent"),
                _range_count(m.c.status == FAILED, *span).label("failed"),
            )

        with self._engine().connect() as conn:
            found = {
                int(i): (int(s), int(f))
                for i, s, f in conn.execute(sa.union_all(*[bar(i, x) for i, x in enumerate(starts)]))
            }
        return [Bar(start, *found.get(i, (0, 0))) for i, start in enumerate(starts)]

    def oldest_queued(self) -> tuple[datetime | None, int]:
        """When the oldest waiting letter (queued or claimed) was first tried, and how many wait."""
        m = self.messages
        query = sa.select(sa.func.min(m.c.created_at), sa.func.count()).where(m.c.status.in_(WAITING))
        with self._engine().connect() as conn:
            oldest, count = conn.execute(query).one()
        return oldest, int(count)

    def last_failures(self) -> list[Failure]:
        """The newest failed letter of each route."""
        m = self.messages
        newest = (
            sa.select(sa.func.max(m.c.id).label("id"))
            .where(m.c.status == FAILED)
            .group_by(m.c.account_id)
            .subquery()
        )
        query = (
            sa.select(
                m.c.id,
                m.c.account_id,
                m.c.created_at,
                m.c.error_stage,
                m.c.error_code,
                m.c.error_reply,
                m.c.error,
            )
            .where(m.c.id.in_(sa.select(newest.c.id)))
            .order_by(m.c.id.desc())
        )
        with self._engine().connect() as conn:
            rows = conn.execute(query).all()
            labels = self.labels(conn)
        return [
            Failure(
                r.account_id,
                route_label(r.account_id, labels),
                r.id,
                r.created_at,
                r.error_stage,
                r.error_code,
                r.error_reply,
                r.error,
            )
            for r in rows
        ]

    def cooling(self, now: datetime | None = None) -> list[AccountTrouble]:
        """Accounts that routing skips now after a connection failure."""
        h = self.health
        return self._troubles(h.c.cooldown_until > (now or utcnow()))

    def token_refused(self) -> list[AccountTrouble]:
        """OAuth2 accounts whose last failure was getting a token, not since fixed (saving the account clears it)."""
        h, a = self.health, self.accounts
        return self._troubles(
            sa.and_(h.c.last_stage == "token", a.c.auth == "oauth2", h.c.last_failed_at >= a.c.updated_at)
        )

    def _troubles(self, condition: t.Any) -> list[AccountTrouble]:
        h, a = self.health, self.accounts
        query = (
            sa.select(h.c.account_id, h.c.last_failed_at, h.c.cooldown_until, h.c.last_error)
            .join(a, a.c.id == h.c.account_id)
            .where(condition)
            .order_by(h.c.account_id)
        )
        with self._engine().connect() as conn:
            rows = conn.execute(query).all()
            labels = self.labels(conn)
        return [
            AccountTrouble(
                r.account_id,
                route_label(r.account_id, labels),
                r.last_failed_at,
                r.cooldown_until,
                r.last_error,
            )
            for r in rows
        ]

    def route_counts(self, since: datetime, until: datetime) -> dict[int | None, dict[str, int]]:
        """Letters per route and status created in ``[since, until)``."""
        m = self.messages
        query = (
            sa.select(m.c.status, m.c.account_id, sa.func.count())
            .where(m.c.created_at >= since, m.c.created_at < until)
            .group_by(m.c.status, m.c.account_id)
        )
        found: dict[int | None, dict[str, int]] = {}
        with self._engine().connect() as conn:
            for status, account_id, count in conn.execute(query):
                found.setdefault(account_id, {})[status] = int(count)
        return found

    def route_labels(self) -> dict[int, str]:
        """``Name <email>`` of every account, by id."""
        with self._engine().connect() as conn:
            return self.labels(conn)

    def top_errors(self, since: datetime, limit: int = 3) -> dict[int | None, list[tuple[str, int]]]:
        """The commonest errors of each route's failed letters since ``since``: ``(error, count)``."""
        m = self.messages
        query = (
            sa.select(m.c.account_id, m.c.error, sa.func.count().label("n"))
            .where(m.c.created_at >= since, m.c.status == FAILED)
            .group_by(m.c.account_id, m.c.error)
            .order_by(m.c.account_id, sa.func.count().desc())
        )
        found: dict[int | None, list[tuple[str, int]]] = {}
        with self._engine().connect() as conn:
            for account_id, error, count in conn.execute(query):
                errors = found.setdefault(account_id, [])
                if len(errors) < limit:
                    errors.append((error or "", int(count)))
        return found


def _next_boundary(now: datetime, step: timedelta) -> datetime:
    """The end of the hour (or day) that holds ``now``, so bars line up with the clock."""
    if step >= timedelta(days=1):
        return now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    return now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
