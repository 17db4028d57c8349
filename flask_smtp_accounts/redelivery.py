"""Sending again what waits in the message log: retry runs of the queue, the drainers' loop, and resends.

:func:`retry_queue` (``flask smtp-accounts retry``, or ``ext.retry_queue()``
from a scheduler) sends the queued letters whose time has come, each
through the same routing and failover as a fresh letter, to the
recipients still pending, with its original Message-ID; the retry policy
(``retry.py``) decides what a failed try does.

**Never twice.** Letters are claimed in batches (``queued`` → ``claimed``,
:meth:`MessageLog.claim`, the one claim of every drainer: this run, the
outbox's ``deliver_queued`` and ``deliver_ids``), then each is moved to
``sending`` (its write-ahead) right before it is sent
(:func:`deliver_claimed`), so two runs at once never send the same letter.
A claim whose drainer died before sending comes back after its lease; a
letter left ``sending`` by a process that died is never retried
automatically (the server may have accepted it): it shows as interrupted
for a person to check and resend.

:func:`resend` is the manual action (admin page, Python API) for one failed,
queued or interrupted letter; it refuses letters a server already accepted.
"""

from __future__ import annotations

import threading
import typing as t
from dataclasses import dataclass, field

from . import delivery, flask_mail_hook
from .errors import ResendError
from .headers import get_header
from .letter import Letter, Outcome
from .message_info import FAILED, INTERRUPTED, QUEUED, SENT, SUPPRESSED, MessageInfo
from .message_log import Claim
from .models import utcnow
from .texts import N_, Text

if t.TYPE_CHECKING:
    from .state import AppState


@dataclass(frozen=True)
class RetryReport:
    """What one retry run did."""

    #: Delivered (to every pending recipient, or the rest refused for good).
    sent: int = 0
    #: Back in the queue after a temporary failure.
    requeued: int = 0
    #: Given up: a permanent refusal, or the last allowed try failed.
    failed: int = 0
    #: Taken by another run at the same time.
    skipped: int = 0
    #: Letters left ``sending`` past their lease by a process that stopped (outcome unknown; never retried).
    interrupted: int = 0
    #: Old rows deleted by the retention setting.
    pruned: int = 0

    def __str__(self) -> str:
        return (
            f"sent {self.sent}, requeued {self.requeued}, failed {self.failed}, skipped {self.skipped},"
            f" interrupted {self.interrupted}, pruned {self.pruned}"
        )


def body_not_kept() -> Text:
    return Text("body-not-kept", N_("its body was not kept, so it cannot be sent again"))


def stored_letter(record: MessageInfo) -> Letter:
    """A letter rebuilt from its row, for its pending recipients, with its Message-ID."""
    body = record.body
    if body is None:
        raise ResendError(record.id, body_not_kept())

    def render() -> bytes:
        return body

    mail_options, rcpt_options = record.options
    return Letter(
        sender=record.sender,
        recipients=list(record.pending),
        envelope_from=record.envelope_from,
        message_id=record.message_id,
        headers={},
        mail_options=mail_options,
        rcpt_options=rcpt_options,
        render=render,
        subject=record.subject,
        reply_to=get_header(body, "Reply-To"),
        bulk=record.bulk,
        record=record,
    )


def _stored_or_none(record: MessageInfo) -> Letter | None:
    """:func:`stored_letter`, or ``None`` for a row without its body."""
    try:
        return stored_letter(record)
    except ResendError:
        return None


def dispatcher(state: AppState) -> delivery.Dispatcher:
    """A dispatcher outside any ``mail.connect()`` block, with Flask-Mail's own server as the default route."""
    default, max_emails = flask_mail_hook.stored_route()
    return state.dispatcher(state.directory.settings(), default=default, max_emails=max_emails)


def _send(dispatcher: delivery.Dispatcher, state: AppState, record_id: int, *, requeue: bool) -> Outcome:
    record = state.message_log.get(record_id)
    return dispatcher.redeliver(record, stored_letter(record), requeue=requeue)


@dataclass
class Tally:
    """What happened to the claimed letters of a run, counted as they settle."""

    sent: int = 0
    requeued: int = 0
    failed: int = 0
    #: Claimed, then taken by another drainer after the lease ran out: not sent here.
    skipped: int = 0
    #: Ids of the letters this run delivered (sent or suppressed), in the order they settled.
    delivered_ids: list[int] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        self.sent += other.sent
        self.requeued += other.requeued
        self.failed += other.failed
        self.skipped += other.skipped
        self.delivered_ids += other.delivered_ids


def deliver_claimed(
    state: AppState,
    dispatcher: delivery.Dispatcher,
    claim: Claim,
    tally: Tally | None = None,
    stop: threading.Event | None = None,
) -> Tally:
    """Send the letters of ``claim`` one by one on ``dispatcher``: each ``claimed`` → ``sending`` → settled.

    A temporary failure puts a letter back in the queue (with its backoff).
    If sending stops on an error, or ``stop`` is set, the claimed letters
    not yet begun go back to the queue at once (an error then propagates).
    Every write goes through the dispatcher's connection: a drainer thread
    keeps one, instead of taking one from the pool for each letter. The
    rows come with the claim; once a letter's envelope left, one
    transaction updates the row of the letter before it and moves it to
    ``sending`` (:meth:`Dispatcher.send_claimed`): one commit a letter,
    before the letter's content leaves. Each letter is sent knowing the
    next, whose envelope may go with its data.
    """
    log = dispatcher.message_log
    tally = tally if tally is not None else Tally()
    letters = [(claim.rows[record_id], _stored_or_none(claim.rows[record_id])) for record_id in claim.ids]
    try:
        for n, (record, letter) in enumerate(letters):
            if stop is not None and stop.is_set():
                break
            record_id = record.id
            if letter is None:
                log.update(
                    record_id, {"status": FAILED, "claimed_until": None, "error": "its body was not kept"}
                )
                tally.failed += 1
                continue
            following = next(((r, f) for r, f in letters[n + 1 : n + 2] if f is not None), None)
            outcome = dispatcher.send_claimed(record, letter, claim, following)
            if outcome is None:
                tally.skipped += 1
            elif outcome.status in (SENT, SUPPRESSED):
                tally.sent += 1
                tally.delivered_ids.append(record_id)
            elif outcome.status == QUEUED:
                tally.requeued += 1
            else:
                tally.failed += 1
    finally:
        try:
            dispatcher.settle_behind()
        finally:
            log.release(claim)  # only rows still ``claimed`` go back
    return tally


def retry_queue(state: AppState, *, limit: int | None = None, batch: int = 100) -> RetryReport:
    """Prune old rows, count interrupted sends, then send the queued letters that are due.

    ``limit`` bounds how many letters this run sends (``None``: all due).
    Letters it puts back in the queue wait for a later run.
    """
    log = state.message_log
    settings = state.directory.settings()
    pruned = log.prune(settings.message_retention_days)
    state.quotas.prune()
    interrupted = log.count_interrupted()
    tally = Tally()
    started = utcnow()
    done = 0
    sender = dispatcher(state)
    try:
        while limit is None or done < limit:
            claim = log.claim(batch if limit is None else min(batch, limit - done), due_by=started)
            if not claim.ids:
                break
            deliver_claimed(state, sender, claim, tally)
            done += len(claim.ids)
    finally:
        sender.close()
    return RetryReport(
        sent=tally.sent,
        requeued=tally.requeued,
        failed=tally.failed,
        skipped=tally.skipped,
        pruned=pruned,
        interrupted=interrupted,
    )


def resend(state: AppState, record_id: int) -> MessageInfo:
    """Send one failed, queued or interrupted letter again now, to its pending recipients.

    Raises :class:`ResendError` for a letter already delivered, without a
    body, or being sent by someone else, and :class:`DeliveryError` when no
    route delivered it (its row then says why).
    """
    log = state.message_log
    record = log.get(record_id)
    if record.status == SENT:
        raise ResendError(
            record_id,
            Text("already-sent", N_("it was sent already; sending it again would deliver it twice")),
        )
    if record.status == SUPPRESSED:
        raise ResendError(
            record_id,
            Text(
                "already-suppressed", N_("it was suppressed already; sending it again would deliver it twice")
            ),
        )
    if record.body is None or not record.pending:
        raise ResendError(record_id, body_not_kept())
    if not log.take_for_resend(record_id, [FAILED, QUEUED, INTERRUPTED]):
        raise ResendError(record_id, Text("being-sent", N_("another process is sending it right now")))
    sender = dispatcher(state)
    try:
        outcome = _send(sender, state, record_id, requeue=False)
    finally:
        sender.close()
    if outcome.undelivered:
        assert outcome.error is not None
        outcome.error.record_id = record_id
        raise outcome.error
    return log.get(record_id)
