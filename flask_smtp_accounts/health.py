"""Account health: the last connection-level failure of each account and its cool-down, in the database.

The same row says whether a person paused the account's queue (the outbox).

An account that failed at the connection level (connect, TLS, login, a
dropped connection or a timeout) is skipped for ``cooldown_s`` seconds, so
that a dead server does not cost every letter a full timeout. The note
lives in ``smtp_accounts_health``, so every process of the site skips it:
routing reads it when it is about to open a connection to the account (not
per letter; a block reuses its open connections). A note is an upsert,
so processes failing at once never collide on the key. Saving a changed
account (``models.py``) or a check that passes lifts the cool-down.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

from .errors import DeliveryError
from .models import AccountInfo, Models, utcnow

#: The dialects' INSERT with an upsert clause; every dialect the project supports has one.
_UPSERT_INSERTS: dict[str, t.Callable[[sa.Table], t.Any]] = {
    "sqlite": sqlite.insert,
    "postgresql": postgresql.insert,
    "mysql": mysql.insert,
    "mariadb": mysql.insert,
}


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
    #: A person paused the account's queue (``pause_queue``): no drainer takes its letters.
    queue_paused: bool = False

    @property
    def cooling_down(self) -> bool:
        """Whether routing skips the account now, in every process."""
        return self.cooldown_until is not None and self.cooldown_until > utcnow()


class Health:
    """Reads and writes ``smtp_accounts_health`` for one app."""

    def __init__(self, models: Models, engine: t.Callable[[], sa.Engine]) -> None:
        self._engine = engine
        self._table = models.Health.__table__

    def cooling(self, account: AccountInfo) -> DeliveryError | None:
        """The error to report instead of trying ``account``, while it cools down; ``None``: try it."""
        table = self._table
        query = sa.select(table.c.cooldown_until, table.c.last_error).where(table.c.account_id == account.id)
        with self._engine().connect() as conn:
            row = conn.execute(query).first()
        now = utcnow()
        if row is None or row.cooldown_until is None or row.cooldown_until <= now:
            return None
        left = (row.cooldown_until - now).total_seconds()
        return DeliveryError(
            "cool-down",
            f"skipped for {left:.0f} more s after a failure: {row.last_error}",
            account_id=account.id,
            host=account.host,
            port=account.port,
        )

    def failed(self, account: AccountInfo, err: DeliveryError, cooldown_s: int) -> None:
        """Note a connection-level failure; cool the account down for ``cooldown_s`` seconds."""
        if err.stage == "cool-down":
            return
        now = utcnow()
        values = {
            "last_failed_at": now,
            "cooldown_until": now + timedelta(seconds=cooldown_s) if cooldown_s > 0 else None,
            "last_stage": err.stage,
            "last_code": err.code,
            "last_error": str(err)[:2000],
        }
        self._upsert(
            {"account_id": account.id, "failures": 1, **values},
            {"failures": self._table.c.failures + 1, **values},
        )

    def _upsert(self, row: dict[str, t.Any], changes: dict[str, t.Any]) -> None:
        """Insert an account's row, or make ``changes`` to the one there: one statement, no duplicate-key error."""
        engine = self._engine()
        insert = _UPSERT_INSERTS[engine.dialect.name](self._table).values(**row)
        if engine.dialect.name in ("mysql", "mariadb"):
            statement = insert.on_duplicate_key_update(**changes)
        else:
            statement = insert.on_conflict_do_update(index_elements=[self._table.c.account_id], set_=changes)
        with engine.begin() as conn:
            conn.execute(statement)

    def lift(self, account_id: int) -> None:
        """End an account's cool-down in every process (a check passed)."""
        table = self._table
        with self._engine().begin() as conn:
            conn.execute(table.update().where(table.c.account_id == account_id).values(cooldown_until=None))

    def pause_queue(self, account_id: int, paused: bool) -> None:
        """Pause (or resume) the queue of an account, for every process: claims skip its letters meanwhile."""
        self._upsert(
            {"account_id": account_id, "failures": 0, "queue_paused": paused}, {"queue_paused": paused}
        )

    def report(self) -> dict[int, AccountHealth]:
        """Every account's last failure and cool-down."""
        with self._engine().connect() as conn:
            rows = conn.execute(sa.select(self._table)).mappings().all()
        return {row["account_id"]: AccountHealth(**row) for row in rows}
