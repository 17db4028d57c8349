"""The cap on connections open to an account's server at once, across every process and machine.

An account with ``max_connections`` N > 0 has N slots in
``smtp_accounts_connection_slot`` (made on first use). A connection may
be opened only while its holder has a slot: taken by a conditional
``UPDATE`` (the slot is free, or its lease ran out), so two holders never
get the same one on any database; renewed while the connection lives;
freed when the holder is done. A process killed while holding one leaves
it until its lease (:data:`SLOT_LEASE`) ends.
"""

from __future__ import annotations

import os
import typing as t
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

from .message_filters import is_conflict
from .models import Models, utcnow

#: How long a slot stays taken without being renewed. A holder renews it once half is gone, at its
#: next letter; a connection left idle longer than this is closed and opened again with a new slot.
SLOT_LEASE = timedelta(minutes=2)

#: The dialects' INSERT that skips rows already there.
_INSERT_MISSING: dict[str, t.Callable[[sa.Table], t.Any]] = {
    "sqlite": lambda table: sqlite.insert(table).on_conflict_do_nothing(),
    "postgresql": lambda table: postgresql.insert(table).on_conflict_do_nothing(),
    "mysql": lambda table: mysql.insert(table).prefix_with("IGNORE"),
    "mariadb": lambda table: mysql.insert(table).prefix_with("IGNORE"),
}


@dataclass
class Slot:
    """One slot of an account, held by this process."""

    account_id: int
    number: int
    holder: str
    lease_until: datetime

    def due_for_renewal(self, now: datetime) -> bool:
        return self.lease_until - now < SLOT_LEASE / 2


class ConnectionSlots:
    """Takes, renews and frees slots in ``smtp_accounts_connection_slot`` for one app."""

    def __init__(self, models: Models, engine: t.Callable[[], sa.Engine]) -> None:
        self._engine = engine
        self._table = models.ConnectionSlot.__table__

    def take(self, account_id: int, max_connections: int) -> Slot | None:
        """A free slot of the account, now taken; ``None`` when all ``max_connections`` are held."""
        table = self._table
        engine = self._engine()
        with engine.begin() as conn:
            numbers = set(
                conn.execute(sa.select(table.c.slot).where(table.c.account_id == account_id)).scalars()
            )
            missing = [n for n in range(max_connections) if n not in numbers]
            if missing:
                conn.execute(
                    _INSERT_MISSING[engine.dialect.name](table),
                    [
                        {"account_id": account_id, "slot": n, "holder": None, "lease_until": None}
                        for n in missing
                    ],
                )
        holder = f"{os.getpid()}-{uuid.uuid4().hex}"
        for number in range(max_connections):
            now = utcnow()
            try:
                with engine.begin() as conn:
                    taken = conn.execute(
                        table.update()
                        .where(
                            table.c.account_id == account_id,
                            table.c.slot == number,
                            sa.or_(table.c.holder.is_(None), table.c.lease_until < now),
                        )
                        .values(holder=holder, lease_until=now + SLOT_LEASE)
                    ).rowcount
            except sa.exc.DBAPIError as error:
                if is_conflict(error):  # another holder took it meanwhile
                    continue
                raise
            if taken == 1:
                return Slot(account_id, number, holder, now + SLOT_LEASE)
        return None

    def renew(self, slot: Slot) -> bool:
        """Extend the lease of a slot this process holds; ``False`` when it lost it (the lease had run out)."""
        now = utcnow()
        with self._engine().begin() as conn:
            renewed = conn.execute(self._held(slot).values(lease_until=now + SLOT_LEASE)).rowcount
        if renewed == 1:
            slot.lease_until = now + SLOT_LEASE
        return renewed == 1

    def free(self, slot: Slot) -> None:
        """Give a slot back at once (the connection is closed)."""
        with self._engine().begin() as conn:
            conn.execute(self._held(slot).values(holder=None, lease_until=None))

    def _held(self, slot: Slot) -> t.Any:
        table = self._table
        return table.update().where(
            table.c.account_id == slot.account_id, table.c.slot == slot.number, table.c.holder == slot.holder
        )
