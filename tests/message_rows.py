"""Message log rows written straight into the table, for pages that show what the log holds.

The dashboard and the summary count rows of any age; a test cannot send a
letter thirty days ago, so it writes the row a letter would have left.
"""

from __future__ import annotations

import typing as t
from datetime import datetime, timedelta

import sqlalchemy as sa


def add_rows(ext: t.Any, rows: t.Iterable[t.Mapping[str, t.Any]]) -> None:
    """Insert message log rows (``status``, ``created_at``, ``account_id``... ; the rest take their defaults)."""
    table = ext._state.models.Message.__table__
    values = [
        {"updated_at": row.get("created_at", datetime(2026, 1, 1)), "account_label": "", **row}
        for row in rows
    ]
    with ext._state.engine().begin() as conn:
        for value in values:  # one by one: rows may name different columns
            conn.execute(sa.insert(table), value)


def set_health(ext: t.Any, account_id: int, **values: t.Any) -> None:
    """Write an account's health row as the send path leaves it after a connection failure."""
    table = ext._state.models.Health.__table__
    with ext._state.engine().begin() as conn:
        conn.execute(table.delete().where(table.c.account_id == account_id))
        conn.execute(table.insert().values(account_id=account_id, failures=1, **values))


def add_sample_traffic(ext: t.Any, now: datetime | None = None) -> None:
    """A believable week of mail for the screenshots: a daily rhythm, a few failures, one letter queued."""
    from flask_smtp_accounts.models import utcnow

    now = now or utcnow()
    rows: list[dict[str, t.Any]] = []
    for hours_ago in range(24 * 7):
        at = now - timedelta(hours=hours_ago, minutes=7)
        busy = 2 + (6 if 8 <= at.hour <= 18 else 0) + hours_ago % 3
        rows += [{"status": "sent", "account_id": 1 + hours_ago % 2, "created_at": at}] * busy
        if hours_ago % 17 == 3:
            rows.append(
                {
                    "status": "failed",
                    "account_id": 2,
                    "created_at": at,
                    "error_stage": "send",
                    "error_code": 550,
                    "error_reply": "5.1.1 <old@example.org>: Recipient address rejected",
                    "error": "refused",
                }
            )
    rows.append({"status": "queued", "account_id": 1, "created_at": now - timedelta(minutes=42)})
    add_rows(ext, rows)
