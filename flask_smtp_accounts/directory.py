"""Cached reads of the settings row and of the accounts, one process-wide view per app.

Each ``mail.connect()`` block reads the settings row once (one primary-key
query). Its ``revision`` tells whether any account or setting changed since
the cache was filled, in this process or another; if so the cache is
dropped. Candidates for an address are read with one indexed query and then
served from memory, so choosing an account never scans the table.
"""

from __future__ import annotations

import threading
import typing as t

import sqlalchemy as sa

from .models import ACCOUNT_INFO_FIELDS, SETTINGS_ID, AccountInfo, Models, settings_info
from .settings import DEFAULT_SETTINGS, SettingsInfo


class Directory:
    """Where routing looks up settings and accounts."""

    #: Distinct From addresses remembered before the cache starts over.
    max_cached_addresses = 10_000

    def __init__(self, models: Models, engine: t.Callable[[], sa.Engine]) -> None:
        self._engine = engine
        self._settings_table = models.Settings.__table__
        account = models.Account.__table__
        self._account_table = account
        columns = [account.c[name] for name in ACCOUNT_INFO_FIELDS]
        self._by_key = (
            sa.select(*columns)
            .where(account.c.email_key == sa.bindparam("key"), account.c.active.is_(True))
            .order_by(account.c.id.desc())
        )
        self._by_id = sa.select(*columns).where(account.c.id == sa.bindparam("id"))
        self._read_settings = sa.select(self._settings_table).where(
            self._settings_table.c.id == SETTINGS_ID
        )
        self._lock = threading.Lock()
        self._revision: int | None = None
        self._candidates: dict[str, tuple[AccountInfo, ...]] = {}

    def settings(self) -> SettingsInfo:
        """Read the settings row; drop cached accounts when anything changed."""
        try:
            with self._engine().connect() as conn:
                row = conn.execute(self._read_settings).mappings().first()
        except (sa.exc.OperationalError, sa.exc.ProgrammingError) as err:
            raise RuntimeError(
                "flask-smtp-accounts could not read its settings table. If its tables"
                " do not exist yet, create them with db.create_all() or your migrations."
                f" ({err.orig})"
            ) from err
        info = settings_info(row) if row is not None else DEFAULT_SETTINGS
        if info.revision != self._revision:
            with self._lock:
                self._candidates = {}
                self._revision = info.revision
        return info

    def candidates(self, key: str) -> tuple[AccountInfo, ...]:
        """Active accounts whose email key is ``key``, largest id first."""
        found = self._candidates.get(key)
        if found is not None:
            return found
        with self._engine().connect() as conn:
            rows = conn.execute(self._by_key, {"key": key}).mappings().all()
        found = tuple(AccountInfo(**row) for row in rows)
        with self._lock:
            if len(self._candidates) >= self.max_cached_addresses:
                self._candidates = {}
            self._candidates[key] = found
        return found

    def account(self, account_id: int) -> AccountInfo | None:
        """One account by id, active or not, read fresh."""
        with self._engine().connect() as conn:
            row = conn.execute(self._by_id, {"id": account_id}).mappings().first()
        return AccountInfo(**row) if row is not None else None

    def forget(self) -> None:
        """Drop every cached entry (the next read goes to the database)."""
        with self._lock:
            self._candidates = {}
            self._revision = None
