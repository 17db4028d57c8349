"""Message log rows written straight into the table, for pages that show what the log holds.

The dashboard and the summary count rows of any age; a test cannot send a
letter thirty days ago, so it writes the row a letter would have left.
"""

from __future__ import annotations

import typing as t
from datetime import datetime

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
