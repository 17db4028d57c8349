"""Counts of the message log for the dashboard and the weekly summary, as SQL aggregates.

Every figure is one ``GROUP BY`` over ``smtp_accounts_message`` (and a read
of ``smtp_accounts_health``); no letter's row is loaded into Python, so the
cost grows with the rows an index range holds, not with what the page
shows. A time span is cut into buckets with one ``CASE`` over
``created_at`` (the same SQL on SQLite, PostgreSQL and MariaDB, unlike
their date functions); the index ``(created_at, status, account_id)``
covers those scans.
"""

from __future__ import annotations

import typing as t
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from .models import Models, utcnow

SENT = "sent"
SUPPRESSED = "suppressed"
FAILED = "failed"
QUEUED = "queued"

#: The windows of the counts, longest last: name -> length.
WINDOWS: dict[str, timedelta] = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
#: The chart of each window: how many bars, each this long.
CHART_STEPS: dict[str, tuple[int, timedelta]] = {
    "24h": (24, timedelta(hours=1)),
    "7d": (7, timedelta(days=1)),
    "30d": (30, timedelta(days=1)),
}


@dataclass
class Counts:
    """Letters sent (suppressed ones included), failed and queued."""

    sent: int = 0
    failed: int = 0
    queued: int = 0

    def add(self, status: str, count: int) -> None:
        if status in (SENT, SUPPRESSED):
            self.sent += count
        elif status == FAILED:
            self.failed += count
        elif status == QUEUED:
            self.queued += count


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


def _window_bucket(created_at: t.Any, now: datetime) -> t.Any:
    """0 for the shortest window, 1 for the next...: each row counted once, summed up afterwards."""
    spans = list(WINDOWS.values())
    return sa.case(*[(created_at >= now - span, index) for index, span in enumerate(spans[:-1])], else_=len(spans) - 1)


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
        return {row.id: f"{row.sender_name} <{row.sender_email}>" if row.sender_name else row.sender_email for row in rows}

    def counts(self, now: datetime | None = None) -> tuple[dict[str, Counts], list[AccountCounts]]:
        """Totals and per-route counts for every window, from one grouped query."""
        now = now or utcnow()
        m = self.messages
        longest = max(WINDOWS.values())
        bucket = _window_bucket(m.c.created_at, now).label("bucket")
        query = (
            sa.select(m.c.account_id, m.c.status, bucket, sa.func.count().label("n"))
            .where(m.c.created_at >= now - longest)
            .group_by(m.c.account_id, m.c.status, bucket)
        )
        with self._engine().connect() as conn:
            rows = conn.execute(query).all()
            labels = self.labels(conn)
        names = list(WINDOWS)
        total = {name: Counts() for name in names}
        routes: dict[int | None, AccountCounts] = {}
        for account_id, status, index, count in rows:
            route = routes.get(account_id)
            if route is None:
                route = routes[account_id] = AccountCounts(account_id, _label(labels, account_id))
            for name in names[index:]:
                route.windows[name].add(status, count)
                total[name].add(status, count)
        ordered = sorted(routes.values(), key=lambda r: (r.account_id is not None, r.account_id or 0))
        return total, ordered

    def chart(self, window: str, now: datetime | None = None) -> list[Bar]:
        """The bars of ``window`` (``24h``: per hour, ``7d``/``30d``: per day), oldest first."""
        steps, step = CHART_STEPS[window]
        now = now or utcnow()
        end = _next_boundary(now, step)
        starts = [end - step * (steps - i) for i in range(steps)]
        m = self.messages
        bucket = sa.case(*[(m.c.created_at < start + step, i) for i, start in enumerate(starts)]).label("bucket")
        query = (
            sa.select(bucket, m.c.status, sa.func.count())
            .where(m.c.created_at >= starts[0], m.c.created_at < end)
            .group_by(bucket, m.c.status)
        )
        sent: Counter[int] = Counter()
        failed: Counter[int] = Counter()
        with self._engine().connect() as conn:
            for index, status, count in conn.execute(query):
                if status in (SENT, SUPPRESSED):
                    sent[index] += count
                elif status == FAILED:
                    failed[index] += count
        return [Bar(start, sent[i], failed[i]) for i, start in enumerate(starts)]

    def oldest_queued(self) -> tuple[datetime | None, int]:
        """When the oldest queued letter was first tried, and how many wait."""
        m = self.messages
        query = sa.select(sa.func.min(m.c.created_at), sa.func.count()).where(m.c.status == QUEUED)
        with self._engine().connect() as conn:
            oldest, count = conn.execute(query).one()
        return oldest, int(count)

    def last_failures(self) -> list[Failure]:
        """The newest failed letter of each route."""
        m = self.messages
        newest = (
            sa.select(sa.func.max(m.c.id).label("id")).where(m.c.status == FAILED).group_by(m.c.account_id).subquery()
        )
        query = (
            sa.select(m.c.id, m.c.account_id, m.c.created_at, m.c.error_stage, m.c.error_code, m.c.error_reply, m.c.error)
            .where(m.c.id.in_(sa.select(newest.c.id)))
            .order_by(m.c.id.desc())
        )
        with self._engine().connect() as conn:
            rows = conn.execute(query).all()
            labels = self.labels(conn)
        return [
            Failure(r.account_id, _label(labels, r.account_id), r.id, r.created_at, r.error_stage, r.error_code, r.error_reply, r.error)
            for r in rows
        ]

    def cooling(self, now: datetime | None = None) -> list[AccountTrouble]:
        """Accounts that routing skips now after a connection failure."""
        h = self.health
        return self._troubles(h.c.cooldown_until > (now or utcnow()))

    def token_refused(self) -> list[AccountTrouble]:
        """OAuth2 accounts whose last failure was getting a token, not since fixed (saving the account clears it)."""
        h, a = self.health, self.accounts
        return self._troubles(sa.and_(h.c.last_stage == "token", a.c.auth == "oauth2", h.c.last_failed_at >= a.c.updated_at))

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
        return [AccountTrouble(r.account_id, _label(labels, r.account_id), r.last_failed_at, r.cooldown_until, r.last_error) for r in rows]

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


def _label(labels: dict[int, str], account_id: int | None) -> str:
    if account_id is None:
        return "Flask-Mail default"
    return labels.get(account_id, f"Account {account_id} (deleted)")


def _next_boundary(now: datetime, step: timedelta) -> datetime:
    """The end of the hour (or day) that holds ``now``, so bars line up with the clock."""
    if step >= timedelta(days=1):
        return now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    return now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
