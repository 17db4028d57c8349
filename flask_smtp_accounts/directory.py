"""Cached reads of the settings row and of the accounts, one process-wide view per app.

Each ``mail.connect()`` block reads the settings row once (one primary-key
query). Its ``revision`` tells whether any account or setting changed
since the cache was filled, in this process or another: every change bumps
it in the same transaction (``models.py``). Candidates for an address are
read with one indexed query and then served from memory, so choosing an
account never scans the table.

A cache entry is kept only under the revision its reader saw *before* the
query: a thread whose query raced a change stores its answer under the old
revision, which no later block asks for.
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
        settings = models.Settings.__table__
        account = models.Account.__table__
        columns = [account.c[name] for name in ACCOUNT_INFO_FIELDS]
        self._by_key = (
            sa.select(*columns)
            .where(account.c.email_key == sa.bindparam("key"), account.c.active.is_(True))
            .order_by(account.c.id.desc())
        )
        self._by_id = sa.select(*columns).where(account.c.id == sa.bindparam("id"))
        self._all = sa.select(*columns).order_by(account.c.id)
        self._id = account.c.id
        self._read_settings = sa.select(settings).where(settings.c.id == SETTINGS_ID)
        self._lock = threading.Lock()
        #: The settings last read (``None`` revision: no row yet).
        self._settings: SettingsInfo | None = None
        #: Candidates by email key, and the revision they were read at.
        self._candidates: tuple[int, dict[str, tuple[AccountInfo, ...]]] = (-1, {})

    def settings(self) -> SettingsInfo:
        """The current settings, read from the database (one primary-key query)."""
        try:
            with self._engine().connect() as conn:
                row = conn.execute(self._read_settings).mappings().first()
        except (sa.exc.OperationalError, sa.exc.ProgrammingError) as err:
            raise RuntimeError(
                "flask-smtp-accounts could not read its settings table. If its tables"
                " do not exist yet, create them with db.create_all() or your migrations."
                f" ({err.orig})"
            ) from err
        seen = self._settings
        if row is not None and seen is not None and seen.revision == row["revision"]:
            return seen
        info = settings_info(row) if row is not None else DEFAULT_SETTINGS
        self._settings = info
        return info

    def candidates(self, key: str, revision: int) -> tuple[AccountInfo, ...]:
        """Active accounts whose email key is ``key``, largest id first, as of ``revision``.

        ``revision`` is that of the caller's settings, read before this call.
        """
        cached_at, cache = self._candidates
        if cached_at == revision:
            found = cache.get(key)
            if found is not None:
                return found
        with self._engine().connect() as conn:
            rows = conn.execute(self._by_key, {"key": key}).mappings().all()
        found = tuple(AccountInfo(**row) for row in rows)
        with self._lock:
            cached_at, cache = self._candidates
            if revision > cached_at or len(cache) >= self.max_cached_addresses:
                cached_at, cache = revision, {}
                self._candidates = (cached_at, cache)
            if cached_at == revision:
                cache[key] = found
        return found

    def account(self, account_id: int) -> AccountInfo | None:
        """One account by id, active or not, read fresh."""
        with self._engine().connect() as conn:
            row = conn.execute(self._by_id, {"id": account_id}).mappings().first()
        return AccountInfo(**row) if row is not None else None

    def accounts(self, ids: t.Collection[int] | None = None) -> tuple[AccountInfo, ...]:
        """Every account (or those of ``ids``), active or not, in id order, read fresh."""
        query = self._all if ids is None else self._all.where(self._id.in_(list(ids)))
        with self._engine().connect() as conn:
            return tuple(AccountInfo(**row) for row in conn.execute(query).mappings())

    def forget(self) -> None:
        """Drop every cached entry (the next read goes to the database)."""
        with self._lock:
            self._candidates = (-1, {})
            self._settings = None
