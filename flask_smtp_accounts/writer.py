"""A thread of its own for the writes that sending must not wait for.

The rows of delivered letters and the notes of failed accounts are written
here, in order, a batch per transaction, so that ``mail.send`` never waits
for a commit (on SQLite a commit is an ``fsync``: longer than sending a
letter to a nearby server). Writes linger up to :attr:`linger_s` to gather
the letters of many single ``mail.send`` calls into one transaction: on
SQLite a commit also makes readers wait, and every ``mail.connect()``
block starts with a read of the settings. Undelivered letters are *not*
written here: their rows are written by the sending thread, durably,
before ``mail.send`` returns or raises.

Readers of this process see their own writes: :meth:`BackgroundWriter.drain`
waits until everything submitted is written, and the extension's reading
methods call it first. Pending writes are bounded (:attr:`max_pending`
rows; a sender waits beyond it), and drained when the interpreter exits.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import typing as t
import weakref

import sqlalchemy as sa

logger = logging.getLogger("flask_smtp_accounts")

Job = t.Callable[[sa.Connection], object]


class BackgroundWriter:
    """Runs database writes on one daemon thread, in the order they were submitted."""

    #: Rows waiting to be written before a sender has to wait.
    max_pending = 10_000
    #: Rows that are written at once, without lingering.
    batch_rows = 500
    #: How long a write waits for more to join its transaction.
    linger_s = 1.0
    #: How long the interpreter's exit waits for pending writes.
    exit_timeout = 10.0

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._jobs: list[tuple[sa.Engine, Job, int]] = []
        self._pending = 0
        self._busy = False
        self._urgent = False
        self._thread: threading.Thread | None = None
        self._pid = 0
        _writers.add(self)

    def submit(self, engine: sa.Engine, job: Job, rows: int = 1) -> None:
        """Queue ``job(connection)``; it runs in a transaction of its own or shared with others."""
        with self._cond:
            self._start()
            self._cond.wait_for(lambda: self._pending < self.max_pending)
            self._jobs.append((engine, job, rows))
            self._pending += rows
            # Wake the writer only when it waits for a first job or a full batch: not once per letter.
            if len(self._jobs) == 1 or self._pending >= self.batch_rows:
                self._cond.notify_all()

    def drain(self, timeout: float | None = 30.0) -> bool:
        """Wait until every submitted write is done; ``False`` if ``timeout`` ran out."""
        with self._cond:
            if self._thread is None or self._pid != _pid:
                return not self._jobs
            self._urgent = True
            self._cond.notify_all()
            return self._cond.wait_for(lambda: not self._jobs and not self._busy, timeout)

    def _after_fork(self) -> None:
        # The jobs queued are the parent's rows, written by the parent.
        self._cond = threading.Condition()
        self._jobs, self._pending, self._busy, self._urgent = [], 0, False, False
        self._thread = None

    def _start(self) -> None:
        if self._thread is not None and self._pid == _pid and self._thread.is_alive():
            return
        if self._pid != _pid:
            # A forked worker inherits the parent's queue but not its thread: those rows are the parent's.
            self._jobs, self._pending, self._busy = [], 0, False
        self._pid = _pid
        self._thread = threading.Thread(target=self._run, name="flask-smtp-accounts writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._jobs))
                self._cond.wait_for(lambda: self._urgent or self._pending >= self.batch_rows, self.linger_s)
                jobs, self._jobs = self._jobs, []
                self._busy, self._urgent = True, False
            try:
                self._write(jobs)
            finally:
                with self._cond:
                    self._busy = False
                    self._pending -= sum(rows for _, _, rows in jobs)
                    self._cond.notify_all()

    @staticmethod
    def _write(jobs: list[tuple[sa.Engine, Job, int]]) -> None:
        engines: dict[sa.Engine, list[Job]] = {}
        for engine, job, _ in jobs:
            engines.setdefault(engine, []).append(job)
        for engine, batch in engines.items():
            try:
                with engine.begin() as conn:
                    for job in _merged(batch):
                        job(conn)
                continue
            except Exception:  # noqa: BLE001 - one bad write must not lose the others
                pass
            lost: list[BaseException] = []
            for job in batch:
                try:
                    with engine.begin() as conn:
                        job(conn)
                except Exception as err:  # noqa: BLE001 - the thread must live on; the log says what was lost
                    lost.append(err)
            if lost:
                logger.error(
                    "flask-smtp-accounts could not write %d of %d message log writes: %s",
                    len(lost), len(batch), lost[0], exc_info=lost[0],
                )


def _merged(batch: list[Job]) -> list[Job]:
    """Consecutive jobs joined where a job's ``merge(next_job)`` returns their union.

    The rows of many single ``mail.send`` calls become one ``executemany``.
    Should the transaction fail, the jobs are retried one by one, unmerged.
    """
    out: list[Job] = []
    for job in batch:
        merge = getattr(out[-1], "merge", None) if out else None
        joined = merge(job) if merge is not None else None
        if joined is None:
            out.append(job)
        else:
            out[-1] = joined
    return out


_writers: weakref.WeakSet[BackgroundWriter] = weakref.WeakSet()

#: This process's id, kept up to date across forks: a system call per ``submit`` is measurable.
_pid = os.getpid()


def _forked() -> None:
    """In a forked child: the parent's writer thread did not come along, and its lock may be held."""
    global _pid
    _pid = os.getpid()
    for writer in list(_writers):
        writer._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


@atexit.register
def _drain_all() -> None:
    for writer in list(_writers):
        writer.drain(writer.exit_timeout)
