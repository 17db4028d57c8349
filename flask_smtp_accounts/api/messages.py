"""The API of the letters: the message log, resends, the retry queue and the outbox."""

from __future__ import annotations

import typing as t

from flask import current_app

from .. import message_export, outbox, outbox_block, outbox_status, redelivery, resend_copy
from ..ids import parse_id
from ..message_info import MessageInfo, Page
from ..outbox import DeliveryReport
from ..outbox_status import OutboxLine
from .base import APIBase


class MessagesAPI(APIBase):
    """The message log, resends, the retry queue and the outbox."""

    # --- message log, failover and the retry queue -------------------------------

    def messages(
        self,
        *,
        status: str | None = None,
        account_id: int | None = None,
        address: str | None = None,
        subject: str | None = None,
        message_id: str | None = None,
        search: str | None = None,
        since: t.Any = None,
        until: t.Any = None,
        page: int = 1,
        per_page: int = 50,
    ) -> Page:
        """A page of the message log, newest first.

        ``status``: sent, suppressed, failed, queued, claimed (a drainer
        holds it), sending, cancelled, or ``interrupted`` (left ``sending``
        by a process that stopped: outcome unknown, never sent again
        automatically). ``account_id`` 0:
        letters sent through Flask-Mail's own settings. ``address``: part of
        the From or of any recipient; ``subject``: part of the subject;
        ``message_id``: part of the Message-ID (angle brackets optional);
        ``search``: part of any of these. ``since``/``until``: datetimes (UTC).
        """
        return self._state.message_log.search(
            status=status,
            account_id=account_id,
            address=address,
            subject=subject,
            message_id=message_id,
            search=search,
            since=since,
            until=until,
            page=page,
            per_page=per_page,
        )

    def export_messages(self, fmt: str = "csv", **filters: t.Any) -> t.Iterator[str]:
        """The message log rows matching ``filters`` (as :meth:`messages` takes them) as CSV or JSON text pieces.

        A generator: rows are read in chunks as it is consumed, so an
        export of any size takes constant memory. Bodies are not exported.
        """

        return message_export.export(self._state.message_log, fmt, **filters)

    def get_message(self, record_id: int) -> MessageInfo:
        """One letter of the message log; :class:`MessageNotFoundError` (a ``LookupError``) when there is none."""
        return self._state.message_log.get(record_id)

    def resend_message(self, record_id: int) -> MessageInfo:
        """Send a failed, queued or interrupted letter again now, with its Message-ID, to the recipients it has not reached.

        Raises :class:`ResendError` for a letter a server already accepted,
        and :class:`DeliveryError` when no route delivered it.
        """

        return redelivery.resend(self._state, record_id)

    def resend_copy(self, record_id: int, recipients: t.Sequence[str] | None = None) -> MessageInfo:
        """Send a logged letter again as a new letter (new row, new Message-ID), to ``recipients`` or its own.

        For a delivered letter (its body is kept with the ``keep_bodies``
        setting) or a copy to another address; the new row's ``resend_of``
        names the original. Raises :class:`ResendError` when the body was
        not kept and :class:`DeliveryError` when no route delivered it.
        """

        return resend_copy.resend_copy(self._state, record_id, recipients)

    def retry_queue(self, *, limit: int | None = None) -> t.Any:
        """Send the queued letters that are due (also prunes old rows); returns a :class:`RetryReport`.

        Run it from a scheduler, or as ``flask smtp-accounts retry``.
        """

        return redelivery.retry_queue(self._state, limit=limit)

    # --- the outbox ----------------------------------------------------------------

    def outbox(self, batch: int = 1) -> t.ContextManager[None]:
        """Store every letter sent inside the block (this thread) in the queue, and return at once::

            with smtp_accounts.outbox():
                for msg in newsletter:
                    mail.send(msg)
            smtp_accounts.deliver_queued(connections=8)  # or `flask smtp-accounts deliver`, or a worker

        Each letter is routed as usual and its row, ``queued``, names the
        account chosen for it and keeps its body and Message-ID. Bad input
        (no recipients, a bad header) raises as it does without the outbox.
        The ``outbox_all`` and ``outbox_bulk`` settings do the same for
        every letter, or every bulk letter, one by one.

        ``batch=1`` (the default): each letter's row is committed before its
        ``mail.send`` returns, so a process killed inside the block loses no
        letter it was told was stored. ``batch=N`` (up to 10,000): the rows
        are written N at a time, each group in one transaction (one
        multi-row ``INSERT``), and the rest when the block ends, by an
        exception too (the letters handed over are written before it
        propagates). Far fewer round trips and commits, but **a process
        killed inside the block loses the letters not written yet, up to
        N - 1, though** ``mail.send`` **returned for them**. Use it for a job
        whose unit of progress is the block as a whole (a newsletter run
        started again from the top, or from the last id it saw stored), not
        for letters each promised to someone. ``message_queued`` fires for
        each letter when its row is written; :data:`letters_queued` once when
        the block ends. A group that cannot be written raises
        :class:`LettersNotStoredError` (a :class:`MessageLogError`) from the
        ``mail.send`` that filled it, or from the end of the block, naming
        every letter of the group (``message_ids``): none of them is stored,
        those written before stay. (Raised as a block ends by another
        exception, it names that one in a note, ``__notes__``.)
        ``batch`` outside 1..10,000, or not a whole number, raises
        :class:`InvalidArgumentError` before the block begins.
        """
        return outbox_block.outbox(batch)

    def deliver_queued(
        self,
        connections: int = 8,
        limit: int | None = None,
        *,
        progress: t.Callable[[DeliveryReport], None] | None = None,
    ) -> DeliveryReport:
        """Send the due letters of the queue over up to ``connections`` connections at once (threads of this process).

        ``limit``: at most this many letters (``None``: until none is due).
        ``progress`` is called with the report so far after each batch.
        ``connections`` outside 1..100 raises :class:`InvalidArgumentError`
        before anything is claimed. Other processes and machines may drain
        the same queue at once: no letter is sent twice.
        """

        return outbox.deliver_queued(
            self._state,
            current_app._get_current_object(),  # type: ignore[attr-defined]
            connections=connections,
            limit=limit,
            progress=progress,
        )

    def deliver_ids(self, ids: t.Iterable[int]) -> DeliveryReport:
        """Claim exactly these message log rows (those still due) and send them on this thread's connections.

        What a worker task calls with the ids :meth:`queued_ids` handed out;
        rows another worker holds, or no longer waiting, are skipped.
        """

        return outbox.deliver_ids(self._state, ids)

    def queued_ids(self, limit: int, account_id: int | None = None) -> list[int]:
        """Ids of the letters due now, lowest first, without claiming them (``account_id`` 0: Flask-Mail's route)."""

        return outbox.queued_ids(self._state, limit, account_id)

    def outbox_status(self) -> list[OutboxLine]:
        """Per account: letters waiting and being sent, sent and failed in 24 h, letters a minute, time left, paused."""

        return outbox_status.outbox_status(self._state)

    def pause_queue(self, account_id: int) -> None:
        """Stop drainers (every process) from taking the letters waiting for this account, until :meth:`resume_queue`.

        Letters already being sent finish. ``account_id`` 0 pauses Flask-Mail's own route.
        """
        self._state.health.pause_queue(self._queue_key(account_id), True)

    def resume_queue(self, account_id: int) -> None:
        """Let drainers take the account's letters again."""
        self._state.health.pause_queue(self._queue_key(account_id), False)

    def cancel_queued(self, account_id: int | None = None, ids: t.Iterable[int] | None = None) -> int:
        """Cancel waiting letters: every one (no argument), an account's (0: Flask-Mail's route), or these ids.

        Returns how many. A cancelled letter is never sent; letters a
        drainer is sending are left alone.
        """

        key = None if account_id is None else self._queue_key(account_id)
        return outbox_status.cancel_queued(self._state, key, ids)

    @staticmethod
    def _queue_key(account_id: t.Any) -> int:
        key = parse_id(account_id)
        if key is None:
            raise LookupError(f"There is no SMTP account with id {account_id}.")
        return key

    def prune_messages(self) -> int:
        """Delete message log rows older than the retention setting; returns how many."""
        state = self._state
        return state.message_log.prune(state.directory.settings().message_retention_days)
