"""The ``outbox()`` block of a thread: the letters it stored, and those it keeps to write ``batch`` at a time.

With ``batch=1`` (the default) the dispatcher commits each letter's row
before ``mail.send`` returns (:meth:`MessageLog.store`), and the block only
gathers the ids. With ``batch=N`` the block keeps the rows ``mail.send``
hands it, across every ``mail.send`` and ``mail.connect()`` of the block,
and writes them N at a time, each group in one transaction
(:meth:`MessageLog.store_many`), the rest when the block ends, by an
exception too. A process killed inside the block loses the letters not
written yet: up to N - 1.

:data:`letters_queued` announces ids once they are committed: a group of
``batch=N`` as soon as it is written, so that workers (``init_celery``)
start on a newsletter while the rest of it is still being stored; letters
committed one by one (``batch=1``) together, when the outermost block ends.
"""

from __future__ import annotations

import contextlib
import typing as t
from contextvars import ContextVar
from dataclasses import dataclass

from flask import current_app

from .errors import InvalidArgumentError, LettersNotStoredError
from .signals import letters_queued

if t.TYPE_CHECKING:
    from .letter import Outcome
    from .message_log import MessageLog

#: The largest group: 10,000 rows of a few kB each is a transaction any database takes in its stride.
MAX_BATCH = 10_000


def check_batch(batch: t.Any) -> int:
    """``batch`` as a whole number 1..:data:`MAX_BATCH`, else :class:`InvalidArgumentError`."""
    if isinstance(batch, bool) or not isinstance(batch, int):
        raise InvalidArgumentError("batch", f"must be a whole number, not {batch!r}")
    if not 1 <= batch <= MAX_BATCH:
        raise InvalidArgumentError("batch", f"must be between 1 and {MAX_BATCH}, not {batch}")
    return batch


@dataclass
class _Kept:
    """A letter ``mail.send`` handed over, not written yet; ``announce`` fires its ``message_queued``."""

    row: dict[str, t.Any]
    outcome: Outcome
    announce: t.Callable[[Outcome], None]


class OutboxBlock:
    """One ``outbox()`` block: the ids it stored one by one, in order, and the rows it keeps for its next group."""

    def __init__(self, batch: int = 1, message_log: MessageLog | None = None, app: t.Any = None) -> None:
        self.batch = batch
        self._log = message_log
        self._app = app
        #: Ids of the rows stored one by one in the block (and in blocks nested in it), announced when it ends.
        self.ids: list[int] = []
        self._kept: list[_Kept] = []

    @property
    def keeps_rows(self) -> bool:
        """Whether letters wait here for their group (``batch`` > 1) rather than being written one by one."""
        return self.batch > 1

    def take(self, row: dict[str, t.Any], outcome: Outcome, announce: t.Callable[[Outcome], None]) -> None:
        """Keep a letter's ``queued`` row; the group is written when it is full."""
        self._kept.append(_Kept(row, outcome, announce))
        if len(self._kept) >= self.batch:
            self.write()

    def write(self) -> None:
        """Write the rows kept, in one transaction; announce each (``message_queued``, with its ``record_id``),
        then the group (``letters_queued``).

        :class:`LettersNotStoredError` when they cannot be written: they are
        then dropped from the block, and the error names every one.
        """
        kept, self._kept = self._kept, []
        if not kept:
            return
        assert self._log is not None
        ids = self._log.store_many([letter.row for letter in kept])
        for letter, record_id in zip(kept, ids, strict=True):
            letter.outcome.record_id = record_id
            letter.announce(letter.outcome)
        letters_queued.send(self._app, ids=ids)


#: The ``outbox()`` block the current thread is in; ``None``: none.
_current: ContextVar[OutboxBlock | None] = ContextVar("smtp_accounts_outbox", default=None)


def current_block() -> OutboxBlock | None:
    return _current.get()


def outbox(batch: int = 1) -> t.ContextManager[None]:
    """Store every letter sent inside the block (this thread) queued, ``batch`` rows a transaction; see the module.

    ``batch`` is checked at once (:func:`check_batch`), before the block begins.
    Each group written is announced at once (:data:`letters_queued`); the
    letters a ``batch=1`` block committed one by one, once when the
    outermost block ends (by an exception too: the letters handed over are
    written first). A block begun inside another writes the outer block's
    kept rows first, so that rows follow the order of ``mail.send``; each
    block keeps its own ``batch``.
    """
    return _block(check_batch(batch))


@contextlib.contextmanager
def _block(batch: int) -> t.Iterator[None]:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    block = OutboxBlock(batch, app.extensions["smtp_accounts"].message_log if batch > 1 else None, app)
    outer = _current.get()
    if outer is not None:
        outer.write()
    token = _current.set(block)
    try:
        yield
    except BaseException as ended_by:
        _end(app, block, token, ended_by)
        raise
    _end(app, block, token, None)


def _end(app: t.Any, block: OutboxBlock, token: t.Any, ended_by: BaseException | None) -> None:
    """Write the block's last group, then announce the ids stored one by one; ``ended_by``: what ends it, noted on an error."""
    _current.reset(token)
    try:
        block.write()
    except LettersNotStoredError as error:
        if ended_by is not None:
            error.add_note(f"The outbox block was ending by {type(ended_by).__name__}: {ended_by}")
        raise
    finally:
        announce_stored(app, block.ids)


def announce_stored(app: t.Any, ids: list[int]) -> None:
    """Announce rows the outbox stored: with the ``outbox()`` block around them when it ends, else now."""
    if not ids:
        return
    block = _current.get()
    if block is not None:
        block.ids.extend(ids)
    else:
        letters_queued.send(app, ids=list(ids))
