"""Cached reads of the settings row and of the accounts, one process-wide view per app.

Each ``mail.connect()`` block reads the settings' ``revision`` once (one
primary-key query). It tells whether any account or setting changed since
the cache was filled, in this process or another; if so the settings row is
read again and the cached accounts are dropped. Candidates for an address
are read with one indexed query and then served from memory, so choosing an
account never scans the table.

The revision is read with SQL compiled once for the engine's dialect and no
parameters, on a DBAPI connection: it is the one query of every
``mail.send``, and SQLAlchemy's Core execution costs three times the query
itself (about 35 of 50 µs on SQLite). The connection is one the directory
keeps for it (:class:`_RevisionReader`): taking one from the pool and
giving it back costs as much again (about 60 µs between two sends). A
thread that finds it in use by another takes one from the pool instead.
Being below Core, this query is not seen by ``before_cursor_execute``
listeners or ``echo``; every other query of this module is.
"""

from __future__ import annotations

import os
import threading
import typing as t
import weakref

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
        self._read_revision = sa.select(self._settings_table.c.revision).where(
            self._settings_table.c.id == SETTINGS_ID
        )
        #: The revision query compiled for one dialect: ``(dialect, sql)``.
        self._revision_sql: tuple[t.Any, str] | None = None
        self._lock = threading.Lock()
        self._reader = _RevisionReader()
        self._revision: int | None = None
        #: The settings last read, and the revision they were read at (``None``: no row).
        self._settings: tuple[int | None, SettingsInfo] | None = None
        self._candidates: dict[str, tuple[AccountInfo, ...]] = {}
        #: Memos of the blocks that read the settings at this revision (see :meth:`remembered`).
        self._memos: tuple[int | None, dict[str, dict[t.Any, t.Any]]] = (None, {})

    def settings(self) -> SettingsInfo:
        """The current settings; drop cached accounts when anything changed.

        Reads only the revision; the whole row only when the revision moved.
        """
        engine = self._engine()
        seen = self._settings
        if seen is not None:
            found, revision = self._revision_now(engine)
            if found and revision == seen[0]:
                return seen[1]
        try:
            with engine.connect() as conn:
                row = conn.execute(self._read_settings).mappings().first()
        except (sa.exc.OperationalError, sa.exc.ProgrammingError) as err:
            raise RuntimeError(
                "flask-smtp-accounts could not read its settings table. If its tables"
                " do not exist yet, create them with db.create_all() or your migrations."
                f" ({err.orig})"
            ) from err
        info = settings_info(row) if row is not None else DEFAULT_SETTINGS
        self._settings = (row["revision"] if row is not None else None, info)
        if info.revision != self._revision:
            with self._lock:
                self._candidates = {}
                self._memos = (info.revision, {})
                self._revision = info.revision
        return info

    def remembered(self, revision: int) -> dict[str, dict[t.Any, t.Any]]:
        """Memos (by name) that hold while no account or setting changes, shared by this app's blocks.

        ``revision`` is that of the caller's settings; the memos are shared
        only while it is the current one, else the caller gets its own.
        """
        current, memos = self._memos
        return memos if current == revision else {}

    def _revision_now(self, engine: sa.Engine) -> tuple[bool, int | None]:
        """``(True, revision)`` of the settings row (``None``: no row); ``(False, None)`` on any database error.

        On an error the caller reads through Core, which reports it (or
        succeeds, if the error was a connection the pool had lost).
        """
        compiled = self._revision_sql
        if compiled is None or compiled[0] is not engine.dialect:
            sql = str(self._read_revision.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
            compiled = self._revision_sql = (engine.dialect, sql)
        kept = self._reader.read(engine, compiled[1])
        if kept is not None:
            return kept
        dbapi_error = engine.dialect.loaded_dbapi.Error
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            try:
                cursor.execute(compiled[1])
                row = cursor.fetchone()
            finally:
                cursor.close()
        except dbapi_error as err:
            if engine.dialect.is_disconnect(err, raw.dbapi_connection, None):
                raw.invalidate(err)
            return False, None
        finally:
            raw.close()
        return True, (row[0] if row is not None else None)

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
            self._memos = (None, {})
            self._revision = None
            self._settings = None


class _RevisionReader:
    """A DBAPI connection of the directory's own, for the revision query of every send.

    Made by the engine's pool (so its connect events apply), then detached
    from it: the pool keeps all its connections for the site, and this one
    stays open across sends, in autocommit where the dialect has it (else
    each read ends with a rollback), so it never holds a snapshot or a
    lock. One thread at a time uses it; :meth:`read` returns ``None`` when
    another thread has it, when the pool shares one connection among all
    (SQLite in memory: detaching it would lose the database), or on any
    error (the connection is then closed, and the next read makes a new one).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._engine: sa.Engine | None = None
        self._connection: t.Any = None
        self._autocommit = False
        self._closer: weakref.finalize[t.Any, t.Any] | None = None
        _readers.add(self)

    def read(self, engine: sa.Engine, sql: str) -> tuple[bool, int | None] | None:
        if not isinstance(engine.pool, (sa.pool.QueuePool, sa.pool.NullPool)):
            return None
        if not self._lock.acquire(blocking=False):
            return None
        try:
            if self._engine is not engine:
                self._close()
                self._open(engine)
            connection = self._connection
            cursor = connection.cursor()
            try:
                cursor.execute(sql)
                row = cursor.fetchone()
            finally:
                cursor.close()
            if not self._autocommit:
                connection.rollback()
            return True, (row[0] if row is not None else None)
        except Exception:  # noqa: BLE001 - the pool's connection will read it, and report what is wrong
            self._close()
            return None
        finally:
            self._lock.release()

    def _open(self, engine: sa.Engine) -> None:
        raw = engine.raw_connection()
        connection = raw.dbapi_connection
        assert connection is not None
        raw.detach()  # the DBAPI connection is ours now: closed by us, never by the pool's reset
        self._engine, self._connection = engine, connection
        self._closer = weakref.finalize(self, connection.close)
        try:
            engine.dialect.set_isolation_level(connection, "AUTOCOMMIT")
            self._autocommit = True
        except Exception:  # noqa: BLE001 - a dialect without autocommit: roll back after each read
            self._autocommit = False

    def _close(self) -> None:
        closer, self._closer = self._closer, None
        self._engine = self._connection = None
        if closer is not None:
            try:
                closer()
            except Exception:  # noqa: BLE001,S110 - a connection that is already broken
                pass

    def _forked(self) -> None:
        # The parent's connection must not be used, nor closed (for a server connection, closing sends the
        # parent's session a goodbye): keep it referenced and start over. The lock may have been held.
        if self._closer is not None:
            self._closer.detach()
            _inherited.append(self._connection)
        self._closer = None
        self._engine = self._connection = None
        self._lock = threading.Lock()


_readers: weakref.WeakSet[_RevisionReader] = weakref.WeakSet()
#: Connections inherited from a parent process: never used, never closed here.
_inherited: list[t.Any] = []


def _after_fork() -> None:
    for reader in list(_readers):
        reader._forked()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
