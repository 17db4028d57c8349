"""The message log: one row per letter, written ahead of sending; its listing, claims, and pruning.

**Write-ahead.** A letter's row is committed, as ``sending`` with its body
and a lease (:data:`LEASE`), before the first byte of the letter goes to
any server; after the attempt the row is updated (``sent``, ``suppressed``,
``failed``, ``queued``) before ``mail.send`` returns or raises. A process
killed at any moment thus leaves a row for every letter a server may have
received. A row still ``sending`` after its lease belongs to a process
that died mid-send: it shows as *interrupted* (outcome unknown), is never
sent again automatically (that could deliver it twice), and a person may
resend it. When a row cannot be written, nothing is sent:
:class:`~flask_smtp_accounts.errors.MessageLogError` says so.

Rows are written through connections of their own, never through the
site's ``db.session``: the site's transaction is never committed or
flushed by a letter. Each write is a transaction of its own (the rows of
an ``outbox(batch=N)`` block: one a group, :meth:`MessageLog.store_many`); within a
connection block the writes share one pooled connection
(:meth:`MessageLog.for_block`) instead of taking one from the pool for
each, and a drainer commits a letter's outcome with
the next letter's write-ahead (:meth:`MessageLog.settle`). :func:`row_of`
is the one builder of a row, for every status.

The body of a letter is kept only while it is undelivered (so that it can
be resent), unless the ``keep_bodies`` setting is on. Rows older than
``message_retention_days`` are deleted by :meth:`MessageLog.prune`, a
bounded batch per statement, from the retry run, never from sending.

The module is longer than most (about 600 lines) because :class:`MessageLog`
is the table's one writer, and every write that a promise above rests on
(write-ahead, an outbox group, settle, claim, the move to ``sending``, cancel, prune) reads
best next to the others. What can stand apart does: the row builder
(``message_rows.py``), the conditions rows are read by
(``message_filters.py``) and the API's view of a row (``message_info.py``).
"""

from __future__ import annotations

import contextlib
import copy
import threading
import typing as t
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import sqlalchemy as sa

from .errors import LettersNotStoredError, MessageLogError, MessageNotFoundError
from .ids import parse_id
from .message_filters import conditions, due_condition, in_states, is_conflict, queue_account
from .message_info import (
    CANCELLED,
    CLAIMED,
    FAILED,
    INTERRUPTED,
    QUEUED,
    SENDING,
    SENT,
    SUPPRESSED,
    MessageInfo,
    Page,
)
from .message_rows import LEASE, info_of
from .models import Models, utcnow

#: The dialects whose claim is ``SELECT ... FOR UPDATE SKIP LOCKED``; the others (SQLite) serialise
#: writers, and claim with one conditional ``UPDATE ... RETURNING``.
_SKIP_LOCKED_DIALECTS = frozenset({"postgresql", "mysql", "mariadb"})
#: How many times a write is tried when the database gives it up for a concurrent one (a deadlock).
CONFLICT_TRIES = 3
#: The most bytes of letters one ``INSERT`` of an outbox group carries (more go in the next, in the same
#: transaction): MySQL and MariaDB refuse a statement longer than ``max_allowed_packet`` (16 MB by default).
GROUP_INSERT_BYTES = 4 << 20

_T = t.TypeVar("_T")


@dataclass(frozen=True)
class Claim:
    """The letters one claim took, in id order, and the end of their lease.

    ``until`` also marks the rows as this claim's: a claim of the same row
    made after the lease ran out has a later ``claimed_until``, so the
    first claimer can no longer move it to ``sending``.
    """

    ids: list[int]
    until: datetime
    #: The rows as claimed, by id: read in the claim's own statement, so that moving a letter to
    #: ``sending`` needs no read of its own (nobody changes a row while a claim holds it).
    rows: t.Mapping[int, MessageInfo] = field(default_factory=dict)


class MessageLog:
    """Writes and reads ``smtp_accounts_message`` for one app."""

    #: Rows deleted per statement when pruning.
    prune_batch = 1000
    #: Whether writes share :attr:`_connection` (a block's view, :meth:`for_block`).
    _shared = False
    _connection: sa.Connection | None = None

    def __init__(
        self,
        models: Models,
        engine: t.Callable[[], sa.Engine],
        *,
        blocked: t.Callable[[], str | None] = lambda: None,
        claim_lease: timedelta = LEASE,
    ) -> None:
        self._engine = engine
        self.table = models.Message.__table__
        # Built once: each write passes its row as parameters, so Core neither coerces every value
        # into the statement nor computes a fresh cache key per letter.
        self._insert = self.table.insert()
        self._insert_many = self.table.insert().returning(self.table.c.id, sort_by_parameter_order=True)
        self._update = self.table.update().where(self.table.c.id == sa.bindparam("record_id"))
        table = self.table
        self._begin_sending = (
            table.update()
            .where(
                table.c.id == sa.bindparam("record_id"),
                table.c.status == CLAIMED,
                table.c.claimed_until == sa.bindparam("claim_until"),
            )
            .values(status=SENDING, claimed_until=sa.bindparam("lease_end"), updated_at=sa.bindparam("now"))
        )
        self._health = models.Health.__table__
        #: How long a claim holds its letters before another drainer may take them.
        self.claim_lease = claim_lease
        #: Why a write would wait on a lock this thread holds itself (``None``: it would not).
        self._blocked = blocked
        #: The turn of this process's threads at writing SQLite (shared by every view of the log).
        self._sqlite_turn = threading.Lock()

    def for_block(self) -> MessageLog:
        """A view of this log for one connection block (one thread): its writes share one pooled connection.

        The connection is taken at the first write and given back by
        :meth:`close`. Every write is still its own committed transaction.
        """
        block = copy.copy(self)
        block._shared = True
        return block

    def close(self) -> None:
        """Give the block's connection back to the pool."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    @contextlib.contextmanager
    def _turn(self, engine: sa.Engine) -> t.Iterator[None]:
        """On SQLite, this process's threads write one after another, each woken as the one before commits.

        SQLite has one writer at a time; a thread that finds the file locked
        sleeps in growing steps (its busy handler) and often wakes long after
        the lock is free, so eight drainer threads spent most of their time
        asleep. Taking turns here, a waiting thread starts the moment the
        one before commits. Other processes still meet the busy handler.
        Databases with row locks write at once, side by side.
        """
        if engine.dialect.name != "sqlite":
            yield
            return
        with self._sqlite_turn:
            yield

    @contextlib.contextmanager
    def _begin(self) -> t.Iterator[sa.Connection]:
        """A pooled connection in a transaction of its own, in this process's turn on SQLite."""
        engine = self._engine()
        with self._turn(engine), engine.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def _writing(self) -> t.Iterator[sa.Connection]:
        """A connection in a transaction that commits when the block ends without an error."""
        if not self._shared:
            with self._begin() as conn:
                yield conn
            return
        if self._connection is None:
            self._connection = self._engine().connect()
        with self._turn(self._connection.engine), self._connection.begin():
            yield self._connection

    def _transaction(self, work: t.Callable[[sa.Connection], _T]) -> _T:
        """``work`` in a transaction of :meth:`_writing`, run again if the database gave it up for a concurrent one.

        InnoDB rolls a deadlock's victim back whole and asks for a restart
        (error 1213); PostgreSQL does the same with a deadlock or, above READ
        COMMITTED, a serialization failure. Every write here is by row id,
        and the moves between statuses are conditional, so running one
        again writes what it would have written; it is tried
        :data:`CONFLICT_TRIES` times in all.
        """
        for tries_left in range(CONFLICT_TRIES - 1, -1, -1):
            try:
                with self._writing() as conn:
                    return work(conn)
            except sa.exc.DBAPIError as error:
                if not tries_left or not is_conflict(error):
                    raise
        raise AssertionError("CONFLICT_TRIES is at least 1")

    # --- writing ------------------------------------------------------------

    def write_ahead(self, row: dict[str, t.Any]) -> int:
        """Commit a new letter's row (``sending``) before it is sent; return its id.

        Raises :class:`MessageLogError` when the row cannot be written: the
        letter must then not be sent.
        """
        blocked = self._blocked()
        if blocked:
            raise MessageLogError(row["message_id"], blocked)
        try:
            return self.insert(row)
        except sa.exc.SQLAlchemyError as err:
            raise MessageLogError(row["message_id"], _reason(err)) from err

    def store(self, row: dict[str, t.Any]) -> int:
        """Write a letter's ``queued`` row for the outbox, committed before ``mail.send`` returns; return its id.

        One commit a letter, as for a letter sent at once: a site that was
        told its letter is stored may rely on it, even if its process dies
        inside the ``outbox()`` block the next moment. (``outbox(batch=N)``
        trades that for a commit a group: :meth:`store_many`.)
        """
        return self.write_ahead(row)

    def store_many(self, rows: t.Sequence[dict[str, t.Any]]) -> list[int]:
        """Write the ``queued`` rows of an ``outbox(batch=N)`` group in one transaction; their ids, in order.

        One ``INSERT ... RETURNING`` of many rows (SQLAlchemy's
        insertmanyvalues: up to 1,000 rows, and here :data:`GROUP_INSERT_BYTES`
        of letters, a statement); on SQLite, which has no form of it that
        returns new ids in the rows' order, one ``INSERT`` a row. All or
        nothing, in one transaction: :class:`LettersNotStoredError` names
        every letter of the group when it cannot be written.
        """
        if not rows:
            return []
        message_ids = [row["message_id"] for row in rows]
        blocked = self._blocked()
        if blocked:
            raise LettersNotStoredError(message_ids, blocked)
        # Every row with the same keys (a statement for many rows has one column list), None where unset:
        # no column that may hold None has another default, so the rows equal those of insert().
        columns = dict.fromkeys(name for row in rows for name in row)
        uniform = [{name: row.get(name) for name in columns} for row in rows]

        def insert(conn: sa.Connection) -> list[int]:
            return [
                int(key)
                for part in _parts(uniform, GROUP_INSERT_BYTES)
                for key in conn.execute(self._insert_many, part).scalars()
            ]

        try:
            ids = self._transaction(insert)
        except sa.exc.SQLAlchemyError as err:
            raise LettersNotStoredError(message_ids, _reason(err)) from err
        assert len(ids) == len(rows)
        return ids

    def settle(
        self,
        record_id: int,
        row: dict[str, t.Any],
        *,
        message_id: str,
        delivered: bool,
        then: tuple[Claim, int] | None = None,
    ) -> MessageInfo | None:
        """Update a letter's row after its attempt; :class:`MessageLogError` when that cannot be done.

        ``then`` (a claim and the id of a letter it holds): that letter's
        write-ahead (:meth:`begin_sending`) in the same transaction, so that
        a drainer commits once a letter rather than twice; its row is
        returned, ``None`` when the claim no longer holds it.
        """
        try:
            if then is None:
                self.update(record_id, row)
                return None

            def update_and_begin(conn: sa.Connection) -> MessageInfo | None:
                conn.execute(self._update, {**row, "record_id": record_id})
                return self._move_to_sending(conn, *then, utcnow())

            return self._transaction(update_and_begin)
        except sa.exc.SQLAlchemyError as err:
            raise MessageLogError(message_id, _reason(err), delivered=delivered, record_id=record_id) from err

    def insert(self, row: dict[str, t.Any]) -> int:
        """Write one row now, in its own transaction; return its id.

        Values that are ``None`` are left out of the statement: a column that
        may hold ``None`` has no other default, so the row is the same.
        """
        values = {name: value for name, value in row.items() if value is not None}

        def insert(conn: sa.Connection) -> int:
            key = conn.execute(self._insert, values).inserted_primary_key
            assert key is not None
            return int(key[0])

        return self._transaction(insert)

    def update(self, record_id: int, values: dict[str, t.Any]) -> None:
        """Change ``values`` of one row now, in its own transaction."""
        self._transaction(lambda conn: conn.execute(self._update, {**values, "record_id": record_id}))

    def take_for_resend(self, record_id: int, statuses: t.Sequence[str], now: datetime | None = None) -> bool:
        """Take one letter a person resends, straight to ``sending``, atomically: only one taker ever gets ``True``.

        ``statuses`` may hold :data:`INTERRUPTED`: a ``sending`` row past its lease.
        ``False`` also when the database rolled the claim back for a
        concurrent one (a serialization failure or a deadlock).
        """
        now = now or utcnow()
        table = self.table
        try:
            with self._engine().begin() as conn:
                claimed = conn.execute(
                    table.update()
                    .where(table.c.id == record_id, in_states(table, statuses, now))
                    .values(status=SENDING, claimed_until=now + LEASE, updated_at=now)
                ).rowcount
        except sa.exc.DBAPIError as error:
            # At REPEATABLE READ or SERIALIZABLE the database refuses the claim of a row that
            # another claim changed meanwhile: that other claimer has it.
            if is_conflict(error):
                return False
            raise
        return claimed == 1

    # --- reading ------------------------------------------------------------

    def get(self, record_id: int) -> MessageInfo:
        """One row; :class:`MessageNotFoundError` (a ``LookupError``) when there is none (or ``record_id`` is no id)."""
        key = parse_id(record_id)
        row = None
        if key is not None:
            with self._engine().connect() as conn:
                row = conn.execute(sa.select(self.table).where(self.table.c.id == key)).mappings().first()
        if row is None:
            raise MessageNotFoundError(record_id)
        return info_of(row)

    def search(self, *, page: int = 1, per_page: int = 50, **filters: t.Any) -> Page:
        """A page of rows, newest first; ``filters`` as :func:`conditions` takes them.

        A page no database can reach (its offset past 64 bits) is empty.
        """
        page = max(1, int(page))
        per_page = max(1, min(int(per_page), 500))
        if parse_id((page - 1) * per_page) is None:
            return Page([], 0, page, per_page)
        table = self.table
        where = conditions(table, **filters)
        query = sa.select(table).where(*where).order_by(table.c.created_at.desc(), table.c.id.desc())
        with self._engine().connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one()
            rows = conn.execute(query.limit(per_page).offset((page - 1) * per_page)).mappings().all()
        return Page([info_of(r) for r in rows], int(total), page, per_page)

    def scan(
        self, columns: t.Sequence[str], *, chunk: int = 500, **filters: t.Any
    ) -> t.Iterator[sa.RowMapping]:
        """Every matching row, newest id first, ``chunk`` rows per query: memory stays flat whatever the size.

        Each chunk is read on a connection of its own and returned to the
        pool before the rows are handed out, so a slow reader (an export
        streamed to a browser) never holds a connection. ``filters`` as
        :func:`conditions` takes them.
        """
        table = self.table
        where = conditions(table, **filters)
        query = sa.select(*(table.c[name] for name in dict.fromkeys(("id", *columns)))).order_by(
            table.c.id.desc()
        )
        last: int | None = None
        while True:
            page = query.where(*where, *(() if last is None else (table.c.id < last,))).limit(chunk)
            with self._engine().connect() as conn:
                rows = conn.execute(page).mappings().all()
            yield from rows
            if len(rows) < chunk:
                return
            last = rows[-1]["id"]

    # --- the queue: claims ------------------------------------------------------

    def _paused(self, conn: sa.Connection) -> list[int]:
        health = self._health
        return list(
            conn.execute(sa.select(health.c.account_id).where(health.c.queue_paused.is_(True))).scalars()
        )

    def _due(
        self, conn: sa.Connection, now: datetime, due_by: datetime | None, account_id: int | None
    ) -> list[t.Any]:
        """Conditions of the letters a drainer may take now: see :func:`due_condition`, paused accounts left out."""
        table = self.table
        where = [due_condition(table, now, due_by)]
        paused = self._paused(conn)
        if paused:
            waiting_for = table.c.chosen_account_id
            where.append(sa.or_(waiting_for.is_(None), waiting_for.not_in(paused)))
        if account_id is not None:
            where.append(queue_account(table, account_id))
        return where

    def claim(
        self,
        limit: int,
        *,
        account_id: int | None = None,
        ids: t.Sequence[int] | None = None,
        due_by: datetime | None = None,
        now: datetime | None = None,
    ) -> Claim:
        """Take up to ``limit`` due letters for sending, atomically, the lowest ids first: ``queued`` → ``claimed``.

        ``account_id``: only letters waiting for that account (0: for
        Flask-Mail's own route); ``ids``: only these rows; ``due_by``: only
        letters due by then (a run leaves the letters it put back for
        later). On a block's view (:meth:`for_block`) the claim goes through
        the block's connection. Rows another drainer holds are skipped, never waited for
        (``FOR UPDATE SKIP LOCKED``; on SQLite, writers take turns and the
        ``UPDATE`` checks each row again). A claim the database rolls back
        for a concurrent one (a serialization failure, a deadlock) takes
        nothing.
        """
        now = now or utcnow()
        until = now + self.claim_lease
        table = self.table
        if limit <= 0 or ids is not None and not ids:
            return Claim([], until)
        taken = {"status": CLAIMED, "claimed_until": until, "updated_at": now}
        engine = self._engine()
        try:
            with self._writing() as conn:
                where = self._due(conn, now, due_by, account_id)
                if ids is not None:
                    where.append(table.c.id.in_(list(ids)))
                if engine.dialect.name in _SKIP_LOCKED_DIALECTS:
                    first = sa.select(table).where(*where).order_by(table.c.id).limit(limit)
                    rows = conn.execute(first.with_for_update(skip_locked=True)).mappings().all()
                    if rows:
                        locked = [row["id"] for row in rows]
                        conn.execute(table.update().where(table.c.id.in_(locked)).values(**taken))
                else:
                    first = sa.select(table.c.id).where(*where).order_by(table.c.id).limit(limit)
                    statement = table.update().where(table.c.id.in_(first), *where).values(**taken)
                    rows = conn.execute(statement.returning(*table.c)).mappings().all()
        except sa.exc.DBAPIError as error:
            if is_conflict(error):  # a concurrent claim has these rows
                return Claim([], until)
            raise
        records = {
            info.id: replace(info, status=CLAIMED, claimed_until=until, updated_at=now)
            for info in map(info_of, rows)
        }
        return Claim(sorted(records), until, records)

    def begin_sending(
        self, record_id: int, until: datetime, now: datetime | None = None, *, claim: Claim | None = None
    ) -> MessageInfo | None:
        """The write-ahead of a claimed letter: ``claimed`` → ``sending``, committed; its row, or ``None``.

        ``None`` when the claim of ``until`` no longer holds the row (its
        lease ran out and another drainer took it): it must not be sent here.
        ``claim``: the claim that read the row (no read here).
        """
        claim = claim if claim is not None else Claim([record_id], until)
        return self._transaction(lambda conn: self._move_to_sending(conn, claim, record_id, now or utcnow()))

    def _move_to_sending(
        self, conn: sa.Connection, claim: Claim, record_id: int, now: datetime
    ) -> MessageInfo | None:
        """:meth:`begin_sending` within the transaction of ``conn``."""
        lease_end = now + LEASE
        moved = conn.execute(
            self._begin_sending,
            {"record_id": record_id, "claim_until": claim.until, "lease_end": lease_end, "now": now},
        ).rowcount
        if moved != 1:
            return None
        claimed = claim.rows.get(record_id)
        if claimed is None:
            claimed = info_of(
                conn.execute(sa.select(self.table).where(self.table.c.id == record_id)).mappings().one()
            )
        return replace(claimed, status=SENDING, claimed_until=lease_end, updated_at=now)

    def release(self, claim: Claim, ids: t.Sequence[int] | None = None) -> None:
        """Give claimed letters not sent back to the queue, at once (rather than at the end of their lease)."""
        ids = claim.ids if ids is None else list(ids)
        if not ids:
            return
        table = self.table
        statement = (
            table.update()
            .where(table.c.id.in_(ids), table.c.status == CLAIMED, table.c.claimed_until == claim.until)
            .values(status=QUEUED, claimed_until=None, updated_at=utcnow())
        )
        self._transaction(lambda conn: conn.execute(statement))

    def cancel(self, *, account_id: int | None = None, ids: t.Sequence[int] | None = None) -> int:
        """Cancel the waiting letters no drainer holds (of ``account_id``, or ``ids``; neither: all); how many."""
        now = utcnow()
        table = self.table
        where = [due_condition(table, now, due_by=datetime.max)]
        if account_id is not None:
            where.append(queue_account(table, account_id))
        if ids is not None:
            if not ids:
                return 0
            where.append(table.c.id.in_(list(ids)))
        with self._engine().begin() as conn:
            return int(
                conn.execute(
                    table.update().where(*where).values(status=CANCELLED, claimed_until=None, updated_at=now)
                ).rowcount
            )

    def due_ids(self, limit: int, *, account_id: int | None = None, now: datetime | None = None) -> list[int]:
        """Ids of the letters a drainer may take now, lowest first, without claiming them."""
        table = self.table
        with self._engine().connect() as conn:
            where = self._due(conn, now or utcnow(), None, account_id)
            return list(
                conn.execute(sa.select(table.c.id).where(*where).order_by(table.c.id).limit(limit)).scalars()
            )

    def due_accounts(self, now: datetime | None = None) -> dict[int, int]:
        """How many letters a drainer may take now, per account they wait for (0: Flask-Mail's own route)."""
        table = self.table
        key = sa.func.coalesce(table.c.chosen_account_id, 0)
        with self._engine().connect() as conn:
            where = self._due(conn, now or utcnow(), None, None)
            rows = conn.execute(sa.select(key, sa.func.count()).where(*where).group_by(key)).all()
        return {int(account): int(count) for account, count in rows}

    # --- housekeeping -------------------------------------------------------

    def count_waiting(self, *, ids: t.Sequence[int] | None = None) -> int:
        """How many letters wait to be sent (``queued`` or ``claimed``), due now or later; ``ids``: of these rows."""
        table = self.table
        where = [table.c.status.in_([QUEUED, CLAIMED])]
        if ids is not None:
            where.append(table.c.id.in_(list(ids)))
        with self._engine().connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one())

    def count_interrupted(self, now: datetime | None = None) -> int:
        """How many letters were left ``sending`` past their lease (outcome unknown)."""
        table = self.table
        query = (
            sa.select(sa.func.count())
            .select_from(table)
            .where(in_states(table, [INTERRUPTED], now or utcnow()))
        )
        with self._engine().connect() as conn:
            return int(conn.execute(query).scalar_one())

    def prune(self, retention_days: int, now: datetime | None = None) -> int:
        """Delete rows older than ``retention_days`` (0: none), in bounded batches; return how many.

        Letters still waiting (queued, or held by a retry) are kept whatever their age.
        A batch that the database refuses because a concurrent run deletes the
        same rows (at REPEATABLE READ or SERIALIZABLE) ends this run's pruning.
        """
        if retention_days <= 0:
            return 0
        cutoff = (now or utcnow()) - timedelta(days=retention_days)
        table = self.table
        done = sa.and_(table.c.created_at < cutoff, table.c.status.in_([SENT, SUPPRESSED, FAILED, CANCELLED]))
        # The ids first, then a DELETE of that list: MySQL refuses a LIMIT in an IN subquery.
        # The DELETE checks the row again, in case a resend took it meanwhile.
        old = sa.select(table.c.id).where(done).order_by(table.c.id).limit(self.prune_batch)
        deleted = 0
        while True:
            try:
                with self._engine().begin() as conn:
                    ids = list(conn.execute(old).scalars())
                    if ids:
                        deleted += conn.execute(table.delete().where(table.c.id.in_(ids), done)).rowcount
            except sa.exc.DBAPIError as error:
                if is_conflict(error):  # another run is deleting these rows; the next run takes the rest
                    return deleted
                raise
            if len(ids) < self.prune_batch:
                return deleted


def _parts(rows: list[dict[str, t.Any]], most_bytes: int) -> t.Iterator[list[dict[str, t.Any]]]:
    """``rows`` in order, in runs whose letters (``size``) add up to at most ``most_bytes`` (or one letter)."""
    part: list[dict[str, t.Any]] = []
    total = 0
    for row in rows:
        size = row["size"] or 0
        if part and total + size > most_bytes:
            yield part
            part, total = [], 0
        part.append(row)
        total += size
    if part:
        yield part


def _reason(err: sa.exc.SQLAlchemyError) -> str:
    """The database's own words, without the statement and its parameters (they hold the letter)."""
    orig = getattr(err, "orig", None)
    return f"{type(orig).__name__}: {orig}" if orig is not None else type(err).__name__
