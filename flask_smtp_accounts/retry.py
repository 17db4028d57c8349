"""The durable queue of undelivered letters: retry runs with backoff, and resends.

With the ``queue_undelivered`` setting on, a letter no route delivered
stays in the message log as ``queued``, with its body. :func:`retry_queue`
(``flask smtp-accounts retry``, or ``ext.retry_queue()`` from a scheduler)
sends the letters whose time has come, each through the same routing and
failover as a fresh letter, to the recipients still pending, with its
original Message-ID. A try that fails temporarily waits
``retry_backoff_s × 2^(tries-1)`` seconds (at most a day); after
``max_attempts`` tries the letter is marked failed.

**Never twice.** Each letter is claimed with one conditional ``UPDATE``
(``queued`` → ``sending``) before it is sent, so two runs at once never
send the same letter. A letter left ``sending`` by a run that died is not
retried automatically (the server may have accepted it): the next run
marks it failed for a person to check and resend.

:func:`resend` is the manual action (admin page, Python API) for one failed
or queued letter; it refuses letters a server already accepted.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from . import flask_mail_hook
from .delivery import Dispatcher, Letter, Outcome
from .errors import ResendError
from .headers import encode_address, get_header, set_header
from .message_log import FAILED, QUEUED, SENT, SUPPRESSED, MessageInfo
from .models import utcnow
from .texts import N_, Text

if t.TYPE_CHECKING:
    from .extension import _State


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
    #: Left ``sending`` by a run that stopped, now marked failed.
    interrupted: int = 0
    #: Old rows deleted by the retention setting.
    pruned: int = 0

    def __str__(self) -> str:
        return (
            f"sent {self.sent}, requeued {self.requeued}, failed {self.failed}, skipped {self.skipped},"
            f" interrupted {self.interrupted}, pruned {self.pruned}"
        )


def _body_not_kept() -> Text:
    return Text("body-not-kept", N_("its body was not kept, so it cannot be sent again"))


def stored_letter(record: MessageInfo) -> Letter:
    """A letter rebuilt from its row, for its pending recipients, with its Message-ID."""
    body = record.body
    if body is None:
        raise ResendError(record.id, _body_not_kept())

    def render(from_header: str | None) -> bytes:
        return body if from_header is None else set_header(body, "From", encode_address(from_header))

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


def _dispatcher(state: _State) -> Dispatcher:
    """A dispatcher outside any ``mail.connect()`` block, with Flask-Mail's own settings as the default route."""
    suppress, max_emails, open_default = flask_mail_hook.default_route()
    return Dispatcher(state, state.directory.settings(), suppress=suppress, max_emails=max_emails, open_default=open_default)


def _send(dispatcher: Dispatcher, state: _State, record_id: int, *, requeue: bool) -> Outcome:
    record = state.message_log.get(record_id)
    return dispatcher.redeliver(record, stored_letter(record), requeue=requeue)


def retry_queue(state: _State, *, limit: int | None = None, batch: int = 100) -> RetryReport:
    """Prune old rows, settle interrupted sends, then send the queued letters that are due.

    ``limit`` bounds how many letters this run sends (``None``: all due).
    """
    log = state.message_log
    settings = state.directory.settings()
    pruned = log.prune(settings.message_retention_days)
    interrupted = log.fail_interrupted()
    counts = {"sent": 0, "requeued": 0, "failed": 0, "skipped": 0}
    started = utcnow()
    done = 0
    dispatcher = _dispatcher(state)
    try:
        while limit is None or done < limit:
            size = batch if limit is None else min(batch, limit - done)
            ids = log.due(started, size)
            if not ids:
                break
            for record_id in ids:
                if not log.claim(record_id, [QUEUED]):
                    counts["skipped"] += 1
                    continue
                try:
                    outcome = _send(dispatcher, state, record_id, requeue=True)
                except ResendError:
                    log.update(record_id, {"status": FAILED, "claimed_until": None, "error": "its body was not kept"})
                    counts["failed"] += 1
                    continue
                done += 1
                key = {SENT: "sent", SUPPRESSED: "sent", QUEUED: "requeued"}.get(outcome.status, "failed")
                counts[key] += 1
    finally:
        dispatcher.close()
    return RetryReport(pruned=pruned, interrupted=interrupted, **counts)


def resend(state: _State, record_id: int) -> MessageInfo:
    """Send one failed (or queued) letter again now, to its pending recipients.

    Raises :class:`ResendError` for a letter already delivered, without a
    body, or being sent by someone else, and :class:`DeliveryError` when no
    route delivered it (its row then says why).
    """
    log = state.message_log
    record = log.get(record_id)
    if record.status == SENT:
        raise ResendError(record_id, Text("already-sent", N_("it was sent already; sending it again would deliver it twice")))
    if record.status == SUPPRESSED:
        raise ResendError(
            record_id, Text("already-suppressed", N_("it was suppressed already; sending it again would deliver it twice"))
        )
    if record.body is None or not record.pending:
        raise ResendError(record_id, _body_not_kept())
    if not log.claim(record_id, [FAILED, QUEUED]):
        raise ResendError(record_id, Text("being-sent", N_("another process is sending it right now")))
    dispatcher = _dispatcher(state)
    try:
        outcome = _send(dispatcher, state, record_id, requeue=False)
    finally:
        dispatcher.close()
    if outcome.undelivered:
        assert outcome.error is not None
        outcome.error.record_id = record_id
        raise outcome.error
    return log.get(record_id)
