"""The message log: one row per letter, its listing, claims for resending, and pruning.

Rows are written through connections of their own (``engine.begin()``),
never through the site's ``db.session``: the site's transaction is never
committed or flushed by a letter. The dispatcher hands delivered letters'
rows over in batches (when the connection block closes, and every
:attr:`MessageLog.batch_size` letters of a long block) to the background
writer (``writer.py``), which writes each batch in one transaction, so
that sending never waits for a commit. There they are inserted with one
``executemany`` of an INSERT compiled once for the engine's dialect, the
values converted by the column types' own bind processors: Core's
executemany spends about 20 µs a row on its per-row bookkeeping, more than
the database's insert itself, and on the writer thread that time holds the
GIL that sending needs. (Dialects whose Core executemany batches rows into
multi-row VALUES, such as psycopg2, keep Core's, which saves round trips.) An undelivered letter's row is
written at once by the sending thread, with its body, before ``mail.send``
raises or returns. Reading methods first wait for this process's pending
writes, so a process always sees its own letters.

The body of a letter is kept only while it is undelivered (so that it can
be resent), unless the ``keep_bodies`` setting is on. Rows older than
``message_retention_days`` are deleted by :meth:`MessageLog.prune`, a
bounded batch per statement, from the retry run, never from sending.
"""

from __future__ import annotations

import json
import operator
import typing as t
from dataclasses import dataclass
from datetime import datetime, timedelta
from json.encoder import encode_basestring

import sqlalchemy as sa

from .ids import parse_id
from .models import Models, utcnow
from .writer import BackgroundWriter

SENT = "sent"
SUPPRESSED = "suppressed"
FAILED = "failed"
QUEUED = "queued"
#: A retry or resend holds the row while it sends.
SENDING = "sending"
STATUSES = (SENT, SUPPRESSED, FAILED, QUEUED, SENDING)

#: How the log names the route of a letter that no account carried.
DEFAULT_ROUTE = "Flask-Mail default"

#: History entries kept per letter (the latest ones).
MAX_HISTORY = 20

#: How long a retry may hold a letter before it counts as interrupted.
CLAIM_LEASE = timedelta(minutes=15)


@dataclass(frozen=True)
class MessageInfo:
    """A read-only row of the message log."""

    id: int
    created_at: datetime
    updated_at: datetime
    status: str
    account_id: int | None
    chosen_account_id: int | None
    account_label: str
    rule: str
    bulk: bool
    sender: str
    envelope_from: str | None
    sent_from: str | None
    reply_to_added: str | None
    recipients: list[str]
    pending: list[str]
    refused: dict[str, tuple[int, str]]
    subject: str
    message_id: str
    size: int
    attempts: int
    next_attempt_at: datetime | None
    claimed_until: datetime | None
    error_stage: str | None
    error_code: int | None
    error_reply: str | None
    error: str | None
    history: list[dict[str, t.Any]]
    options: tuple[list[str], list[str]]
    body: bytes | None
    #: The row this letter is a copy of (``resend_copy``); ``None`` for a letter the site sent.
    resend_of: int | None = None

    @property
    def route(self) -> str:
        """``DEFAULT_ROUTE`` or the label of the account that carried (or last tried) the letter."""
        return self.account_label or DEFAULT_ROUTE

    @property
    def delivered_to(self) -> list[str]:
        """Recipients the server accepted."""
        return [r for r in self.recipients if r not in self.pending and r not in self.refused]

    @property
    def resendable(self) -> bool:
        """Whether a person may resend it: undelivered, body kept, not held by a retry."""
        return self.status in (FAILED, QUEUED) and self.body is not None and bool(self.pending)


@dataclass(frozen=True)
class Page:
    """One page of the message log, newest first."""

    items: list[MessageInfo]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


_JSON_COLUMNS = {"recipients": list, "pending": list, "refused": dict, "history": list, "options": list}


def _info(row: t.Any) -> MessageInfo:
    values = dict(row)
    for name in _JSON_COLUMNS:
        values[name] = json.loads(values[name] or ("{}" if name == "refused" else "[]"))
    values["refused"] = {k: (v[0], v[1]) for k, v in values["refused"].items()}
    options = values["options"] or [[], []]
    values["options"] = (list(options[0]), list(options[1]))
    return MessageInfo(**values)


#: ``json.dumps`` with these options builds an encoder per call; one will do.
_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def dumps(value: t.Any) -> str:
    return _encoder.encode(value)


def dump_strings(values: t.Iterable[str]) -> str:
    """:func:`dumps` of a list of strings (recipients), with the C string encoder alone."""
    return "[" + ",".join(map(encode_basestring, values)) + "]"


class MessageLog:
    """Writes and reads ``smtp_accounts_message`` for one app."""

    #: Delivered letters buffered before a write inside one long connection block.
    batch_size = 500
    #: Rows deleted per statement when pruning.
    prune_batch = 1000

    def __init__(self, models: Models, engine: t.Callable[[], sa.Engine], writer: BackgroundWriter) -> None:
        self._engine = engine
        self.writer = writer
        self.table = models.Message.__table__
        self._insert = self.table.insert()
        #: Every column but ``id`` and ``resend_of`` (only a copy has one, written by :meth:`insert`):
        #: the keys of a row given to :meth:`submit`.
        self.columns = tuple(c.key for c in self.table.c if c.key not in ("id", "resend_of"))
        self._plans: dict[sa.Dialect, _InsertPlan | None] = {}

    # --- writing ------------------------------------------------------------

    def submit(self, rows: list[dict[str, t.Any]]) -> None:
        """Hand delivered letters' rows to the background writer (one transaction for the batch).

        Each row has a value for every one of :attr:`columns`.
        """
        if rows:
            self.writer.submit(self._engine(), _InsertRows(self, rows), len(rows))

    def _insert_rows(self, conn: sa.Connection, rows: list[dict[str, t.Any]]) -> None:
        dialect = conn.dialect
        if dialect not in self._plans:
            self._plans[dialect] = _InsertPlan.compile(self.table, self.columns, dialect)
        plan = self._plans[dialect]
        if plan is None:
            conn.execute(self._insert, rows)
        else:
            conn.exec_driver_sql(plan.sql, plan.parameters(rows))

    def insert(self, row: dict[str, t.Any]) -> int:
        """Write one row now, in its own transaction; return its id."""
        with self._engine().begin() as conn:
            key = conn.execute(self.table.insert().values(**row)).inserted_primary_key
            assert key is not None
            return int(key[0])

    def update(self, record_id: int, values: dict[str, t.Any]) -> None:
        with self._engine().begin() as conn:
            conn.execute(self.table.update().where(self.table.c.id == record_id).values(**values))

    def claim(self, record_id: int, statuses: t.Sequence[str], now: datetime | None = None) -> bool:
        """Take a letter for sending, atomically: only one claimer of a row ever gets ``True``.

        ``False`` also when the database rolled the claim back for a
        concurrent one (a serialization failure or a deadlock).
        """
        now = now or utcnow()
        table = self.table
        try:
            with self._engine().begin() as conn:
                claimed = conn.execute(
                    table.update()
                    .where(table.c.id == record_id, table.c.status.in_(list(statuses)))
                    .values(status=SENDING, claimed_until=now + CLAIM_LEASE, updated_at=now)
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
        """One row; ``LookupError`` when there is none (or ``record_id`` is no id)."""
        key = parse_id(record_id)
        row = None
        if key is not None:
            self.writer.drain()
            with self._engine().connect() as conn:
                row = conn.execute(sa.select(self.table).where(self.table.c.id == key)).mappings().first()
        if row is None:
            raise LookupError(f"There is no message {record_id} in the message log.")
        return _info(row)

    def search(self, *, page: int = 1, per_page: int = 50, **filters: t.Any) -> Page:
        """A page of rows, newest first; ``filters`` as :func:`conditions` takes them.

        A page no database can reach (its offset past 64 bits) is empty.
        """
        page = max(1, int(page))
        per_page = max(1, min(int(per_page), 500))
        if parse_id((page - 1) * per_page) is None:
            return Page([], 0, page, per_page)
        self.writer.drain()
        table = self.table
        where = conditions(table, **filters)
        query = sa.select(table).where(*where).order_by(table.c.created_at.desc(), table.c.id.desc())
        with self._engine().connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one()
            rows = conn.execute(query.limit(per_page).offset((page - 1) * per_page)).mappings().all()
        return Page([_info(r) for r in rows], int(total), page, per_page)

    def scan(self, columns: t.Sequence[str], *, chunk: int = 500, **filters: t.Any) -> t.Iterator[sa.RowMapping]:
        """Every matching row, newest id first, ``chunk`` rows per query: memory stays flat whatever the size.

        Each chunk is read on a connection of its own and returned to the
        pool before the rows are handed out, so a slow reader (an export
        streamed to a browser) never holds a connection. ``filters`` as
        :func:`conditions` takes them.
        """
        self.writer.drain()
        table = self.table
        where = conditions(table, **filters)
        query = sa.select(*(table.c[name] for name in dict.fromkeys(("id", *columns)))).order_by(table.c.id.desc())
        last: int | None = None
        while True:
            page = query.where(*where, *(() if last is None else (table.c.id < last,))).limit(chunk)
            with self._engine().connect() as conn:
                rows = conn.execute(page).mappings().all()
            yield from rows
            if len(rows) < chunk:
                return
            last = rows[-1]["id"]

    def due(self, now: datetime, limit: int) -> list[int]:
        """Ids of queued letters whose next try is due, the longest waiting first."""
        table = self.table
        query = (
            sa.select(table.c.id)
            .where(table.c.status == QUEUED, table.c.next_attempt_at <= now)
            .order_by(table.c.next_attempt_at, table.c.id)
            .limit(limit)
        )
        with self._engine().connect() as conn:
            return list(conn.execute(query).scalars())

    # --- housekeeping -------------------------------------------------------

    def fail_interrupted(self, now: datetime | None = None) -> int:
        """Mark letters whose sender died mid-send as failed, never as queued.

        Nobody knows whether the server accepted them before the process
        stopped; sending them again automatically could deliver them twice,
        so a person decides (the admin page can resend them).
        """
        now = now or utcnow()
        table = self.table
        with self._engine().begin() as conn:
            return int(
                conn.execute(
                    table.update()
                    .where(table.c.status == SENDING, table.c.claimed_until < now)
                    .values(
                        status=FAILED, claimed_until=None, updated_at=now, error_stage="send", error_code=None,
                        error_reply=None,
                        error="interrupted while sending: the server may have accepted it; check before resending",
                    )
                ).rowcount
            )

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
        done = sa.and_(table.c.created_at < cutoff, table.c.status.in_([SENT, SUPPRESSED, FAILED]))
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


class _InsertRows:
    """A writer job: insert delivered letters' rows; consecutive jobs merge into one executemany."""

    def __init__(self, log: MessageLog, rows: list[dict[str, t.Any]]) -> None:
        self.log = log
        self.rows = rows

    def __call__(self, conn: sa.Connection) -> None:
        self.log._insert_rows(conn, self.rows)

    def merge(self, other: object) -> _InsertRows | None:
        if isinstance(other, _InsertRows) and other.log is self.log:
            return _InsertRows(self.log, self.rows + other.rows)
        return None


@dataclass(frozen=True)
class _InsertPlan:
    """The INSERT of every column but ``id``, compiled for one dialect, and how to bind a row to it."""

    sql: str
    #: The row's values in the statement's order.
    values: t.Callable[[dict[str, t.Any]], tuple[t.Any, ...]]
    #: Positions and bind processors of the columns whose type converts its value.
    processors: tuple[tuple[int, t.Callable[[t.Any], t.Any]], ...]
    #: The statement's parameter names, for a dialect with named parameters; ``None``: positional.
    names: tuple[str, ...] | None

    @classmethod
    def compile(cls, table: sa.Table, columns: tuple[str, ...], dialect: sa.Dialect) -> _InsertPlan | None:
        """``None`` where Core's own executemany is the better one, or the statement is not a plain one."""
        if getattr(dialect, "use_insertmanyvalues_wo_returning", False):
            return None
        compiled = table.insert().compile(dialect=dialect, column_keys=list(columns))
        order = tuple(compiled.positiontup or ()) if compiled.positional else columns
        if set(order) != set(columns) or len(order) != len(columns) or compiled.escaped_bind_names:
            return None
        processors = []
        shared: dict[tuple[type, str], t.Callable[[t.Any], t.Any] | None] = {}
        for index, name in enumerate(order):
            impl = table.c[name].type.dialect_impl(dialect)
            key = (type(impl), repr(impl))  # columns of one type share a processor (see parameters())
            if key not in shared:
                shared[key] = impl.bind_processor(dialect)
            process = shared[key]
            if process is not None:
                processors.append((index, process))
        return cls(
            compiled.string, operator.itemgetter(*order), tuple(processors),
            None if compiled.positional else order,
        )

    def parameters(self, rows: list[dict[str, t.Any]]) -> list[t.Any]:
        """The rows' values for the statement, converted as Core would.

        NULL stays NULL (this table's types bind ``None`` as NULL), and a
        value the row holds twice (``created_at`` is ``updated_at``) is
        converted once: this runs on the writer thread, holding the GIL.
        """
        values, processors, names = self.values, self.processors, self.names
        out: list[t.Any] = []
        for row in rows:
            bound = list(values(row))
            last: t.Any = None
            last_process: t.Any = None
            converted: t.Any = None
            for index, process in processors:
                value = bound[index]
                if value is None:
                    continue
                if value is not last or process is not last_process:
                    last, last_process, converted = value, process, process(value)
                bound[index] = converted
            out.append(tuple(bound) if names is None else dict(zip(names, bound, strict=True)))
        return out


def conditions(
    table: sa.Table,
    *,
    status: str | None = None,
    account_id: int | None = None,
    address: str | None = None,
    subject: str | None = None,
    message_id: str | None = None,
    search: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[t.Any]:
    """The WHERE conditions of the message log's filters, shared by the pages of the list and the export.

    ``account_id`` 0 selects letters sent through Flask-Mail's own
    settings; ``address`` matches the From or any recipient, ``subject``
    the subject, ``message_id`` the Message-ID (with or without its angle
    brackets), each a part being enough and case ignored (ASCII letters
    only on SQLite); ``search`` matches any of the three;
    ``since``/``until`` bound the time (UTC).
    """
    where: list[t.Any] = []
    if status:
        where.append(table.c.status == status)
    if account_id is not None:
        wanted = parse_id(account_id)  # an id no database can hold names no account: nothing matches
        if wanted is None:
            where.append(sa.false())
        else:
            where.append(table.c.account_id.is_(None) if wanted == 0 else table.c.account_id == wanted)
    if address:
        where.append(_contains(address, table.c.sender, table.c.recipients, table.c.sent_from))
    if subject:
        where.append(_contains(subject, table.c.subject))
    if message_id:
        where.append(_contains(message_id.strip().strip("<>"), table.c.message_id))
    if search:
        words = search.strip()
        where.append(
            sa.or_(
                _contains(words, table.c.sender, table.c.recipients, table.c.sent_from, table.c.subject),
                _contains(words.strip("<>"), table.c.message_id),
            )
        )
    if since is not None:
        where.append(table.c.created_at >= since)
    if until is not None:
        where.append(table.c.created_at < until)
    return where


def _contains(text: str, *columns: sa.ColumnElement[t.Any]) -> sa.ColumnElement[bool]:
    """Any of ``columns`` contains ``text``, case ignored."""
    pattern = f"%{_escape_like(text.strip().lower())}%"
    return sa.or_(*(sa.func.lower(column).like(pattern, escape="\\") for column in columns))


#: SQLSTATEs of a transaction rolled back for a concurrent one: serialization failure, deadlock.
_CONFLICT_SQLSTATES = frozenset({"40001", "40P01"})
#: MySQL's error number for the same (its drivers give no SQLSTATE): deadlock.
_MYSQL_DEADLOCK = 1213


def is_conflict(error: sa.exc.DBAPIError) -> bool:
    """Whether the database gave up ``error``'s transaction because a concurrent one changed its rows."""
    orig = error.orig
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if sqlstate in _CONFLICT_SQLSTATES:
        return True
    args: tuple[t.Any, ...] = getattr(orig, "args", ())
    return bool(args) and args[0] == _MYSQL_DEADLOCK


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
