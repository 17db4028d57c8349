"""The per-account log files on disk: their names, rotation, and whole-entry writes.

A log is addressed by an account id and a kind (``send`` or ``check``),
never by a path, so nothing a person types can reach outside the log
folder. Every entry is written with one ``os.write`` on an ``O_APPEND``
descriptor under an exclusive ``flock``: entries from several threads and
several worker processes never interleave, and rotation (which truncates)
happens under the same lock.

The first line of each file records what rotation compares against: the
account's last change and the start of the current rewrite period.

A connection's log session keeps its file open (:class:`LogFile`) and
writes an entry per letter with a lock, an ``fstat`` and a write. It reads
the first line again only when the file is not as its own last write left
it (another writer appended, rotated or deleted it since), so a newsletter
does not reopen and re-parse its log for every letter.
"""

from __future__ import annotations

import calendar
import os
import re
import typing as t
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .errors import LogAddressError, LogNotFoundError
from .ids import parse_id

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no cross-process lock, entries are still one write each
    fcntl = None  # type: ignore[assignment]

#: The two logs of an account.
KINDS = ("send", "check")
_NAME = re.compile(r"^(send|check)_admin_smtp_(0|[1-9][0-9]*)\.log$")
_HEADER = re.compile(rb"^#smtp-accounts-log kind=(send|check) account=(\d+) changed=(\S+) since=(\S+)\n")
_HEADER_PEEK = 256
_OPEN_FLAGS = getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True)
class LogInfo:
    """One log file, as the log list shows it."""

    account_id: int
    #: ``send`` or ``check``.
    kind: str
    #: The account's label; filled in by the extension, which knows the accounts.
    label: str
    #: ``send_admin_smtp_<id>.log`` or ``check_admin_smtp_<id>.log``.
    filename: str
    size: int
    #: Last write, UTC.
    modified: datetime


@dataclass(frozen=True)
class LogChunk:
    """A byte range of a log, so that a large log is never read whole."""

    account_id: int
    kind: str
    #: Where the range starts and ends in the file (bytes).
    offset: int
    end: int
    #: The file's size when it was read.
    size: int
    #: The bytes of the range, decoded as UTF-8 (a character cut at an edge shows as U+FFFD).
    text: str


def log_filename(account_id: t.Any, kind: t.Any) -> str:
    """The file name of a log, the original module's: ``send_admin_smtp_3.log``.

    Raises :class:`LogAddressError` for anything but an account id (a whole
    number, ``0`` for a new account) and a known kind.
    """
    if not isinstance(account_id, int) or parse_id(account_id) is None:
        raise LogAddressError(
            f"A log is addressed by an account id (a whole number, 0 for a new account), not {account_id!r}."
        )
    if not isinstance(kind, str) or kind not in KINDS:
        raise LogAddressError(f"The kind of a log is 'send' or 'check', not {kind!r}.")
    return f"{kind}_admin_smtp_{account_id}.log"


def period_start(anchor: datetime, period: str, now: datetime) -> datetime:
    """Start of the rewrite period that holds ``now``, periods counted from ``anchor``.

    Periods follow each other from the account's last change: with ``day``
    and a change at 10:00, they start at 10:00 each day. Months and years
    keep the anchor's day, clamped to short months (31 January, then
    29 February, then 31 March).
    """
    if now <= anchor:
        return anchor
    if period in ("day", "week"):
        step = timedelta(days=1 if period == "day" else 7)
        return anchor + step * ((now - anchor) // step)
    months = 1 if period == "month" else 12
    count = ((now.year - anchor.year) * 12 + now.month - anchor.month) // months
    start = _add_months(anchor, count * months)
    while start > now:
        count -= 1
        start = _add_months(anchor, count * months)
    return start


def period_end(anchor: datetime, period: str, start: datetime) -> datetime:
    """Start of the period after the one that starts at ``start`` (a :func:`period_start`)."""
    if period in ("day", "week"):
        return start + timedelta(days=1 if period == "day" else 7)
    months = 1 if period == "month" else 12
    count = ((start.year - anchor.year) * 12 + start.month - anchor.month) // months
    return _add_months(anchor, (count + 1) * months)


def _add_months(moment: datetime, months: int) -> datetime:
    year, month = divmod(moment.month - 1 + months, 12)
    year += moment.year
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


@dataclass(frozen=True)
class _Header:
    changed: str
    since: datetime
    length: int


def _stamp(moment: datetime | None) -> str:
    return moment.isoformat() if moment is not None else "-"


def _read_header(fd: int) -> _Header | None:
    match = _HEADER.match(os.pread(fd, _HEADER_PEEK, 0))
    if match is None:
        return None
    try:
        since = datetime.fromisoformat(match.group(4).decode())
    except ValueError:
        return None
    return _Header(match.group(3).decode(), since, match.end())


def _lock(fd: int, exclusive: bool) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)


def _unlock(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class LogFile:
    """One log, kept open by its writer across entries (a connection's log session).

    :meth:`close` it when done. Safe for one thread at a time; other
    threads and processes may write the same log through their own.
    """

    def __init__(self, files: LogFiles, account_id: int, kind: str) -> None:
        self._files = files
        self.account_id = account_id
        self.kind = kind
        self._path = files.path(account_id, kind)
        self._fd: int | None = None
        #: ``(inode, size)`` as this writer's last write left the file, and its first line then.
        self._left: tuple[int, int] | None = None
        self._header: _Header | None = None
        #: The last rotation inputs and results: ``(account_changed, its stamp)``, ``(anchor, period, start, end)``.
        self._stamp: tuple[datetime | None, str] | None = None
        self._period: tuple[datetime, str, datetime, datetime] | None = None

    def append(
        self, entry: bytes, *, account_changed: datetime | None, period: str, max_bytes: int, now: datetime
    ) -> None:
        """Add one whole entry, starting the log over first when rotation says so (see :meth:`LogFiles.append`)."""
        while True:
            fd = self._fd
            if fd is None:
                if not os.path.isdir(self._files.folder):
                    os.makedirs(self._files.folder, mode=0o700, exist_ok=True)
                fd = self._fd = os.open(self._path, os.O_RDWR | os.O_APPEND | os.O_CREAT | _OPEN_FLAGS, 0o600)
                self._left = None
            _lock(fd, exclusive=True)
            try:
                stat = os.fstat(fd)
                if stat.st_nlink == 0:
                    self.close()  # deleted since our last entry, or while we waited for the lock: open the new file
                    continue
                self._write(fd, stat, entry, account_changed, period, max_bytes, now)
                return
            finally:
                if self._fd == fd:
                    _unlock(fd)

    def _write(
        self,
        fd: int,
        stat: os.stat_result,
        entry: bytes,
        account_changed: datetime | None,
        period: str,
        max_bytes: int,
        now: datetime,
    ) -> None:
        header = self._header if self._left == (stat.st_ino, stat.st_size) else _read_header(fd)
        stamp = self._stamp
        if stamp is None or stamp[0] != account_changed:
            stamp = self._stamp = (account_changed, _stamp(account_changed))
        changed = stamp[1]
        anchor = account_changed or (header.since if header is not None else now)
        since = self._period_start(anchor, period, now)
        start_over = (
            header is None
            or header.changed != changed
            or header.since != since
            or (max_bytes > 0 and stat.st_size > header.length and stat.st_size + len(entry) > max_bytes)
        )
        if start_over:
            os.ftruncate(fd, 0)
            first = (
                f"#smtp-accounts-log kind={self.kind} account={self.account_id} changed={changed}"
                f" since={_stamp(since)}\n"
            ).encode()
            _write_all(fd, first + entry)
            header = _Header(changed, since, len(first))
            size = len(first) + len(entry)
        else:
            _write_all(fd, entry)
            size = stat.st_size + len(entry)
        self._left, self._header = (stat.st_ino, size), header

    def _period_start(self, anchor: datetime, period: str, now: datetime) -> datetime:
        known = self._period
        if known is not None and known[0] == anchor and known[1] == period and known[2] <= now < known[3]:
            return known[2]
        start = period_start(anchor, period, now)
        self._period = (anchor, period, start, period_end(anchor, period, start))
        return start

    def close(self) -> None:
        fd, self._fd = self._fd, None
        self._left = None
        if fd is not None:
            os.close(fd)

    def __del__(self) -> None:  # a session that was never closed must not keep its descriptor
        if self._fd is not None:
            self.close()

    def __enter__(self) -> LogFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LogFiles:
    """The log folder of one app."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def path(self, account_id: int, kind: str) -> str:
        """The path of a log, from an id and a kind only (see :func:`log_filename`)."""
        return os.path.join(self.folder, log_filename(account_id, kind))

    def open(self, account_id: int, kind: str) -> LogFile:
        """A log to write many entries to (see :class:`LogFile`); it opens the file at its first entry."""
        return LogFile(self, account_id, kind)

    def append(
        self,
        account_id: int,
        kind: str,
        entry: bytes,
        *,
        account_changed: datetime | None,
        period: str,
        max_bytes: int,
        now: datetime,
    ) -> None:
        """Add one whole entry, starting the log over first when rotation says so.

        The log starts over when the account changed since the log began
        (``account_changed`` differs from the recorded one), when ``now`` is
        past the rewrite period counted from that change, or when this entry
        would take it past ``max_bytes`` (0: no limit). A log that never saw
        its account saved (id 0) counts its periods from its own start.
        """
        with self.open(account_id, kind) as log:
            log.append(entry, account_changed=account_changed, period=period, max_bytes=max_bytes, now=now)

    def list(self) -> list[LogInfo]:
        """Every log in the folder, by account id then kind; other files are ignored."""
        found = []
        try:
            entries = list(os.scandir(self.folder))
        except FileNotFoundError:
            return []
        for entry in entries:
            match = _NAME.match(entry.name)
            if match is None or not entry.is_file(follow_symlinks=False):
                continue
            try:
                stat = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            modified = datetime.fromtimestamp(stat.st_mtime, UTC).replace(tzinfo=None)
            found.append(LogInfo(int(match.group(2)), match.group(1), "", entry.name, stat.st_size, modified))
        found.sort(key=lambda log: (log.account_id, KINDS.index(log.kind)))
        return found

    def read(self, account_id: int, kind: str, offset: int = 0, length: int = 65536) -> LogChunk:
        """Read at most ``length`` bytes from ``offset``; a negative offset counts from the end.

        Raises :class:`LogNotFoundError` when the log does not exist.
        """
        if isinstance(offset, bool) or not isinstance(offset, int):
            raise LogAddressError(f"offset must be a whole number of bytes, not {offset!r}.")
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise LogAddressError(f"length must be a positive whole number of bytes, not {length!r}.")
        path = self.path(account_id, kind)
        try:
            fd = os.open(path, os.O_RDONLY | _OPEN_FLAGS)
        except FileNotFoundError:
            raise LogNotFoundError(account_id, kind) from None
        try:
            _lock(fd, exclusive=False)
            size = os.fstat(fd).st_size
            start = min(max(size + offset, 0) if offset < 0 else offset, size)
            data = os.pread(fd, min(length, size - start), start)
        finally:
            os.close(fd)
        return LogChunk(account_id, kind, start, start + len(data), size, data.decode("utf-8", "replace"))

    def delete(self, account_id: int, kind: str) -> bool:
        """Delete a log; ``False`` when there was none."""
        path = self.path(account_id, kind)
        try:
            fd = os.open(path, os.O_RDONLY | _OPEN_FLAGS)
        except FileNotFoundError:
            return False
        try:
            _lock(fd, exclusive=True)
            try:
                os.unlink(path)
            except FileNotFoundError:
                return False
        finally:
            os.close(fd)
        return True
