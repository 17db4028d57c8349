"""What the outbox holds per account, how fast it goes, and a person's controls: pause, resume, cancel.

A letter waits for the account routing chose for it (the row's
``chosen_account_id``; 0 stands for Flask-Mail's own route); a sent or
failed letter counts for the account that carried it (``account_id``).
The rate is the letters sent in the last :data:`RATE_WINDOW`; the time
left is what waits divided by it. Pausing lives in the health table
(``health.py``), so every drainer of every process sees it at its next claim.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa

from .ids import parse_id
from .labels import DEFAULT_ROUTE, account_label
from .letter import CLAIMED, FAILED, QUEUED, SENDING, SENT
from .models import utcnow

if t.TYPE_CHECKING:
    from .state import AppState

#: The window the rate is measured over.
RATE_WINDOW = timedelta(minutes=5)
#: The window of the sent and failed counts.
DONE_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class OutboxLine:
    """One account's line of the outbox (``account_id`` 0: Flask-Mail's own route)."""

    account_id: int
    label: str
    #: Waiting: queued (due now or later), or claimed by a drainer that stopped before sending.
    queued: int
    #: Being sent: claimed or sending, within the lease.
    in_flight: int
    #: Sent and failed in the last 24 hours.
    sent_24h: int
    failed_24h: int
    #: Letters sent a minute, over the last 5 minutes.
    per_minute: float
    #: Whether a person paused the account's queue.
    paused: bool

    @property
    def seconds_left(self) -> float | None:
        """How long what waits takes at the current rate; ``None``: nothing is being sent."""
        if not self.queued:
            return 0.0
        return self.queued / self.per_minute * 60 if self.per_minute > 0 else None


def outbox_status(state: AppState) -> list[OutboxLine]:
    """Every account's line, in id order, then Flask-Mail's own route's when it has any letter."""
    now = utcnow()
    table = state.message_log.table
    account = state.models.Account.__table__
    waiting_for = sa.func.coalesce(table.c.chosen_account_id, 0)
    carrier = sa.func.coalesce(table.c.account_id, 0)
    live = sa.case((table.c.claimed_until >= now, True), else_=False)
    with state.engine().connect() as conn:
        accounts = conn.execute(
            sa.select(account.c.id, account.c.sender_name, account.c.sender_email).order_by(account.c.id)
        ).all()
        waiting = conn.execute(
            sa.select(waiting_for, table.c.status, live, sa.func.count())
            .where(table.c.status.in_([QUEUED, CLAIMED, SENDING]))
            .group_by(waiting_for, table.c.status, live)
        ).all()
        done = conn.execute(
            sa.select(carrier, table.c.status, sa.func.count())
            .where(table.c.status.in_([SENT, FAILED]), table.c.updated_at >= now - DONE_WINDOW)
            .group_by(carrier, table.c.status)
        ).all()
        recent = dict(
            conn.execute(
                sa.select(carrier, sa.func.count())
                .where(table.c.status == SENT, table.c.updated_at >= now - RATE_WINDOW)
                .group_by(carrier)
            ).all()
        )
    paused = {i for i, health in state.health.report().items() if health.queue_paused}
    queued: dict[int, int] = {}
    in_flight: dict[int, int] = {}
    for key, status, within_lease, count in waiting:
        if status == QUEUED or (status == CLAIMED and not within_lease):
            queued[key] = queued.get(key, 0) + count
        elif within_lease:  # a ``sending`` row past its lease is interrupted: neither waiting nor in flight
            in_flight[key] = in_flight.get(key, 0) + count
    finished = {(key, status): count for key, status, count in done}
    labels = {row.id: account_label(row.sender_name, row.sender_email) for row in accounts}
    if (
        any(0 in numbers for numbers in (queued, in_flight, recent))
        or (0, SENT) in finished
        or (0, FAILED) in finished
    ):
        labels[0] = DEFAULT_ROUTE
    return [
        OutboxLine(
            account_id=key,
            label=label,
            queued=queued.get(key, 0),
            in_flight=in_flight.get(key, 0),
            sent_24h=finished.get((key, SENT), 0),
            failed_24h=finished.get((key, FAILED), 0),
            per_minute=recent.get(key, 0) / (RATE_WINDOW.total_seconds() / 60),
            paused=key in paused,
        )
        for key, label in labels.items()
    ]


def cancel_queued(
    state: AppState, account_id: int | None = None, ids: t.Iterable[t.Any] | None = None
) -> int:
    """Cancel waiting letters (all; of ``account_id``; or these ``ids``); return how many.

    Only letters no drainer is sending are cancelled: a ``claimed`` one
    within its lease may be on its way, and is left.
    """
    wanted = None if ids is None else sorted({k for k in (parse_id(i) for i in ids) if k is not None})
    return state.message_log.cancel(account_id=account_id, ids=wanted)
