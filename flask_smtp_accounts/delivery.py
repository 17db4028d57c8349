"""Sending letters through their routes, inside one ``mail.connect()`` block, and logging each.

A :class:`Dispatcher` lives as long as one Flask-Mail connection block. One
letter goes one way (:meth:`Dispatcher.deliver`):

1. **Choose** the account of its From address (``routing.py``; cached, so
   no query per letter once the address is known). No account: Flask-Mail's
   own ``MAIL_*`` settings carry it, without a chain.
2. **Plan** the chain: the chosen account, then its backups in order
   (``failover.py``), each skipped while it cools down after a connection
   failure. Backups are looked up only when one is needed.
3. **Try** the chain in order on the block's connection of each account
   (opened on first use, reused by later letters), sending only to the
   recipients no server has accepted yet. A connection failure, a timeout or
   a 4xx reply moves on to the next account; a 5xx refusal of the letter
   stops the chain.
4. **Record** the letter in the message log (``message_log.py``). Rows of
   delivered letters are buffered and written in one transaction when the
   block closes (and every :attr:`MessageLog.batch_size` letters); an
   undelivered letter's row, with its body, is written at once. Then an
   undelivered letter is raised as :class:`DeliveryError`, or, with the
   ``queue_undelivered`` setting, left queued for ``retry.py``.

**Exactly once.** Once a server accepted a letter for a recipient, nothing
sends it to that recipient again. The one automatic second try on the same
account is for a reused connection that fails at ``MAIL FROM`` (the server
closed it while idle): nothing of the letter had reached the server then.
A connection lost after the data was sent but before the server's reply is
the one case SMTP cannot settle (RFC 1047); it counts as not delivered.

Retries and resends (``retry.py``) go through the same steps with a letter
rebuilt from its row (:meth:`Dispatcher.redeliver`); they update that row.
"""

from __future__ import annotations

import functools
import logging
import smtplib
import typing as t
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import formataddr

import sqlalchemy as sa
from flask import current_app

from .connection import close_quietly, failure, open_connection
from .errors import DeliveryError
from .failover import (
    CONNECTION,
    PERMANENT,
    RouteHeaders,
    failure_kind,
    parse_sender,
    route_chain,
    route_headers,
)
from .headers import encode_address, set_header
from .message_log import FAILED, MAX_HISTORY, QUEUED, SENT, SUPPRESSED, MessageInfo, dump_strings, dumps
from .models import AccountInfo, utcnow
from .routing import RULE_DISABLED, Choice, address_key, choose, is_bulk
from .settings import SettingsInfo
from .signals import account_failed, message_queued, message_sent, send_failed

if t.TYPE_CHECKING:
    from .extension import _State

logger = logging.getLogger("flask_smtp_accounts")

#: The longest wait between two tries of a queued letter.
MAX_BACKOFF_S = 86_400


@dataclass
class Letter:
    """What the dispatcher needs of a letter, whatever built it.

    ``render(from_header)`` returns the letter's bytes with its From header
    replaced by ``from_header`` (``None``: as the caller wrote it).
    """

    sender: str | tuple[str, str]
    recipients: list[str]
    envelope_from: str | None
    message_id: str
    headers: t.Mapping[str, str]
    mail_options: list[str]
    rcpt_options: list[str]
    render: t.Callable[[str | None], bytes]
    message: t.Any = None
    subject: str = ""
    #: The letter's own Reply-To, if it has one.
    reply_to: str | None = None
    #: ``None``: decide from the headers and :func:`bulk_sending`.
    bulk: bool | None = None
    #: The letter's row in the message log, for a retry or a resend.
    record: MessageInfo | None = None


@dataclass
class Outcome:
    """What happened to one letter: the message log row in the making."""

    letter: Letter
    choice: Choice
    bulk: bool
    pending: list[str]
    delivered: list[str] = field(default_factory=list)
    refused: dict[str, tuple[int, str]] = field(default_factory=dict)
    status: str = ""
    #: The account that carried the letter, or the last one tried.
    account: AccountInfo | None = None
    error: DeliveryError | None = None
    history: list[dict[str, t.Any]] = field(default_factory=list)
    sent_from: str | None = None
    reply_to_added: str | None = None
    size: int = 0
    data: bytes | None = None
    attempts: int = 0
    next_attempt_at: datetime | None = None
    record_id: int | None = None

    def failed(self, account: AccountInfo | None, err: DeliveryError) -> None:
        """One route failed; recipients it refused for good leave ``pending``."""
        self.account, self.error = account, err
        for rcpt, (code, reply) in err.refused.items():
            self.refused[rcpt] = (code, reply)
            if not 400 <= code < 500 and rcpt in self.pending:
                self.pending.remove(rcpt)
        self.history.append(
            {
                "at": utcnow().isoformat(timespec="seconds"),
                "account_id": account.id if account else None,
                "result": "failed",
                "stage": err.stage,
                "code": err.code,
                "reply": err.reply,
                "error": describe(err),
            }
        )

    def accepted(
        self, account: AccountInfo | None, headers: RouteHeaders, refused: dict[str, tuple[int, bytes]], data: bytes
    ) -> None:
        """A server accepted the letter, for all pending recipients but ``refused``."""
        self.account, self.data, self.size = account, data, len(data)
        self.sent_from, self.reply_to_added = headers.from_header, headers.reply_to
        if not refused and not self.refused and not self.history and self.letter.record is None:
            self.delivered += self.pending  # the usual case: a first try, every recipient accepted
            self.pending = []
            return
        refused_now = {r: (c, m.decode("utf-8", "replace") if isinstance(m, bytes) else str(m)) for r, (c, m) in refused.items()}
        for rcpt in self.pending:
            if rcpt not in refused_now:
                self.delivered.append(rcpt)
                self.refused.pop(rcpt, None)
        self.refused.update(refused_now)
        self.pending = [r for r, (c, _) in refused_now.items() if 400 <= c < 500]
        if self.history or refused_now or self.letter.record is not None:
            self.history.append(
                {
                    "at": utcnow().isoformat(timespec="seconds"),
                    "account_id": account.id if account else None,
                    "result": "sent",
                    "refused": {r: list(v) for r, v in refused_now.items()},
                }
            )

    def settle(self, *, queue: bool, max_attempts: int, backoff_s: int, prior_attempts: int) -> None:
        """Decide the status once every route had its turn."""
        self.attempts = prior_attempts + 1
        if self.status == SUPPRESSED:
            return
        if not self.pending:
            if self.delivered:
                self.status = SENT
                return
            # Every recipient refused for good: a person may fix them and resend.
            self.pending = [r for r in self.letter.recipients if r in self.refused]
            self.status = FAILED
            return
        permanent = self.error is not None and not self.error.refused and failure_kind(self.error) == PERMANENT
        if not permanent and queue and self.attempts < max_attempts:
            self.status = QUEUED
            delay = min(backoff_s * 2 ** (self.attempts - 1), MAX_BACKOFF_S)
            self.next_attempt_at = utcnow() + timedelta(seconds=delay)
        else:
            self.status = FAILED

    @property
    def queued(self) -> bool:
        """Waiting in the retry queue: not handed to any server yet."""
        return self.status == QUEUED and not self.delivered

    @property
    def undelivered(self) -> bool:
        """Nothing was accepted and nothing waits in the queue: the caller must hear of it."""
        return self.status == FAILED and not self.delivered


@dataclass
class _Open:
    smtp: smtplib.SMTP
    log: t.Any
    sent: int = 0


class _Interrupted(Exception):
    """A transaction stopped; ``phase`` says how far the letter got."""

    def __init__(self, phase: str, error: BaseException) -> None:
        super().__init__(phase)
        self.phase = phase
        self.error = error

    @property
    def connection_lost(self) -> bool:
        err = self.error
        if isinstance(err, smtplib.SMTPResponseException):
            return err.smtp_code == 421
        return isinstance(err, (smtplib.SMTPServerDisconnected, OSError)) and not isinstance(
            err, smtplib.SMTPRecipientsRefused
        )


def _route_headers(letter: Letter, account: AccountInfo | None) -> RouteHeaders:
    if account is None:
        return RouteHeaders(None, None, letter.envelope_from or parse_sender(letter.sender)[1])
    return route_headers(letter.sender, letter.envelope_from, bool(letter.reply_to), account)


def _options(letter: Letter) -> str:
    if letter.mail_options or letter.rcpt_options:
        return dumps([letter.mail_options, letter.rcpt_options])
    return "[[],[]]"


def _remember(memo: dict[t.Any, t.Any], key: t.Any, value: t.Any, limit: int) -> None:
    if len(memo) >= limit:
        memo.clear()
    memo[key] = value


def _failure_at(stop: _Interrupted, account: AccountInfo | None) -> DeliveryError:
    """The :class:`DeliveryError` of an interrupted transaction, naming the SMTP command."""
    err = failure("send", stop.error, account)
    err.command = stop.phase.upper()
    return err


def describe(err: DeliveryError) -> str:
    """The error as the message log shows it: its message, and the SMTP command that failed."""
    return f"{err} (at {err.command})" if err.command else str(err)


def send_transaction(
    smtp: smtplib.SMTP,
    envelope_from: str,
    recipients: list[str],
    data: bytes,
    mail_options: t.Sequence[str] = (),
    rcpt_options: t.Sequence[str] = (),
) -> dict[str, tuple[int, bytes]]:
    """smtplib's ``sendmail``, step by step, so that a failure tells how far the letter got.

    Returns the refused recipients, as ``sendmail`` does. Raises
    :class:`_Interrupted` with ``phase`` ``mail`` (nothing of the letter
    reached the server), ``rcpt`` or ``data``.
    """
    phase = "mail"
    try:
        smtp.ehlo_or_helo_if_needed()
        options = list(mail_options)
        if smtp.does_esmtp and smtp.has_extn("size"):
            options.insert(0, f"size={len(data)}")
        code, reply = smtp.mail(envelope_from, options)
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, reply, envelope_from)
        phase = "rcpt"
        refused: dict[str, tuple[int, bytes]] = {}
        for rcpt in recipients:
            code, reply = smtp.rcpt(rcpt, list(rcpt_options))
            if code == 421:
                raise smtplib.SMTPResponseException(code, reply)
            if code not in (250, 251):
                refused[rcpt] = (code, reply)
        if len(refused) == len(recipients):
            raise smtplib.SMTPRecipientsRefused(refused)  # type: ignore[arg-type]
        phase = "data"
        code, reply = smtp.data(data)
        if code != 250:
            raise smtplib.SMTPDataError(code, reply)
        return refused
    except (smtplib.SMTPException, OSError) as err:
        stop = _Interrupted(phase, err)
        if stop.connection_lost:
            smtp.close()
        else:
            try:
                smtp.rset()
            except (smtplib.SMTPException, OSError):
                smtp.close()
        raise stop from None


def choose_route(state: _State, settings: SettingsInfo, sender: str | tuple[str, str], headers: t.Mapping[str, str] | None, bulk: bool | None = None) -> Choice:
    """The account a letter from ``sender`` goes through, and the rule that chose it."""
    if not settings.enabled:
        return Choice(None, RULE_DISABLED)
    name, address = parse_sender(sender)
    candidates = state.directory.candidates(address_key(address)) if address else ()
    return choose(candidates, name, is_bulk(headers) if bulk is None else bulk)


class Dispatcher:
    """Routes, sends and logs the letters of one connection block (one thread).

    A block works from one snapshot of the settings, and remembers, per
    From (and bulk flag), the route it chose and the headers it wrote, so
    that a newsletter's letters after the first cost a dictionary lookup.
    Later blocks share these memos until an account or a setting changes
    (``Directory.remembered``), so single ``mail.send`` calls gain too.
    """

    #: Distinct senders remembered before a memo starts over.
    max_remembered = 1024

    def __init__(
        self,
        state: _State,
        settings: SettingsInfo,
        *,
        suppress: bool,
        max_emails: int | None,
        open_default: t.Callable[[], smtplib.SMTP],
    ) -> None:
        self._state = state
        self._settings = settings
        #: The app of the block, the sender of its signals.
        self.app = current_app._get_current_object()  # type: ignore[attr-defined]
        self._suppress = suppress
        self._max_emails = max_emails
        self._open_default = open_default
        self._open: dict[int, _Open] = {}
        self._backups: dict[int, AccountInfo | None] = {}
        self._rows: list[dict[str, t.Any]] = []
        memos = state.directory.remembered(settings.revision)
        self._choices: dict[t.Any, Choice] = memos.setdefault("choices", {})
        self._route_headers: dict[t.Any, RouteHeaders] = memos.setdefault("route headers", {})
        self._sender_texts: dict[t.Any, str] = memos.setdefault("sender texts", {})

    # --- one letter -----------------------------------------------------------

    def deliver(self, letter: Letter) -> Outcome:
        """Route, send and log ``letter``; raise :class:`DeliveryError` when nothing delivered or queued it."""
        outcome = self._attempt(letter, queue=self._settings.queue_undelivered)
        self._record(outcome)
        self._announce(outcome)
        if outcome.undelivered:
            assert outcome.error is not None
            outcome.error.record_id = outcome.record_id
            raise outcome.error
        return outcome

    def redeliver(self, record: MessageInfo, letter: Letter, *, requeue: bool) -> Outcome:
        """Send a letter of the message log again, to its pending recipients, and update its row.

        The caller has claimed the row. ``requeue``: a temporary failure
        goes back to the queue (a retry run) rather than to failed (a resend).
        """
        letter.record = record
        try:
            outcome = self._attempt(letter, queue=requeue)
            self._record(outcome)
        except BaseException:
            self._state.message_log.update(
                record.id,
                {"status": FAILED, "claimed_until": None, "updated_at": utcnow(),
                 "error": "interrupted while sending: the server may have accepted it; check before resending"},
            )
            raise
        self._announce(outcome)
        return outcome

    def close(self) -> None:
        """Close every connection the block opened, then write the buffered rows."""
        for opened in self._open.values():
            self._finish(opened)
        self._open.clear()
        self.flush()

    def flush(self) -> None:
        """Hand the rows of delivered letters buffered so far to the background writer."""
        rows, self._rows = self._rows, []
        self._state.message_log.submit(rows)

    # --- steps ----------------------------------------------------------------

    def _attempt(self, letter: Letter, *, queue: bool) -> Outcome:
        bulk = is_bulk(letter.headers) if letter.bulk is None else letter.bulk
        choice = self._choose(letter.sender, bulk)
        outcome = Outcome(letter, choice, bulk, pending=list(letter.recipients))
        if self._suppress:
            # As Flask-Mail: a suppressed letter is not even rendered (unless its body is to be kept).
            headers = self._headers(letter, choice.account)
            data = self._render(letter, headers) if self._settings.keep_bodies else b""
            outcome.accepted(choice.account, headers, {}, data)
            outcome.status = SUPPRESSED
        elif choice.account is None:
            self._try(outcome, None)
        else:
            for account in route_chain(choice.account, self._backup):
                cooling = self._state.health.cooling(account.id)
                if cooling is not None:
                    outcome.failed(account, cooling)
                elif not self._try(outcome, account):
                    break
                if not outcome.pending:
                    break
        settings = self._settings
        prior = letter.record.attempts if letter.record else 0
        outcome.settle(queue=queue, max_attempts=settings.max_attempts, backoff_s=settings.retry_backoff_s, prior_attempts=prior)
        return outcome

    def _try(self, outcome: Outcome, account: AccountInfo | None) -> bool:
        """Send through one route; ``True`` when the next route should be tried."""
        letter = outcome.letter
        headers = self._headers(letter, account)
        data = self._render(letter, headers)
        try:
            refused = self._send_on(account, headers.envelope_from, outcome.pending, data, letter)
        except DeliveryError as err:
            outcome.failed(account, err)
            kind = failure_kind(err)
            if kind == CONNECTION and account is not None:
                self._state.health.failed(account, err, self._settings.cooldown_s)
                account_failed(self.app, account, err, self._settings.cooldown_s)
            return bool(outcome.pending) if err.refused else kind != PERMANENT
        outcome.accepted(account, headers, refused, data)
        return bool(outcome.pending)

    def _choose(self, sender: t.Any, bulk: bool) -> Choice:
        key = (sender, bulk)
        try:
            choice = self._choices.get(key)
        except TypeError:  # an unhashable sender, e.g. a list
            return choose_route(self._state, self._settings, sender, None, bulk)
        if choice is None:
            choice = choose_route(self._state, self._settings, sender, None, bulk)
            _remember(self._choices, key, choice, self.max_remembered)
        return choice

    def _headers(self, letter: Letter, account: AccountInfo | None) -> RouteHeaders:
        key = (letter.sender, letter.envelope_from, bool(letter.reply_to), account.id if account else None)
        try:
            headers = self._route_headers.get(key)
        except TypeError:
            return _route_headers(letter, account)
        if headers is None:
            headers = _route_headers(letter, account)
            _remember(self._route_headers, key, headers, self.max_remembered)
        return headers

    def _sender_text(self, sender: str | tuple[str, str]) -> str:
        if isinstance(sender, str):
            return sender
        try:
            text = self._sender_texts.get(sender)
        except TypeError:
            return formataddr(sender)
        if text is None:
            text = formataddr(sender)
            _remember(self._sender_texts, sender, text, self.max_remembered)
        return text

    @staticmethod
    def _render(letter: Letter, headers: RouteHeaders) -> bytes:
        data = letter.render(headers.from_header)
        if headers.reply_to:
            data = set_header(data, "Reply-To", encode_address(headers.reply_to))
        return data

    def _backup(self, account_id: int) -> AccountInfo | None:
        if account_id not in self._backups:
            self._backups[account_id] = self._state.directory.account(account_id)
        return self._backups[account_id]

    # --- connections ------------------------------------------------------------

    def _send_on(
        self, account: AccountInfo | None, envelope_from: str, recipients: list[str], data: bytes, letter: Letter
    ) -> dict[str, tuple[int, bytes]]:
        """One SMTP transaction on the block's connection of ``account`` (``None``: Flask-Mail's)."""
        key = account.id if account is not None else 0
        opened = self._connection(account, letter.message_id)
        reused = opened.sent > 0
        try:
            refused = self._transaction(opened, envelope_from, recipients, data, letter)
        except _Interrupted as stop:
            if stop.connection_lost:
                self._drop(key)
            if not (reused and stop.phase == "mail" and stop.connection_lost):
                raise _failure_at(stop, account) from None
            # The server closed the idle connection between letters: reconnect once.
            opened = self._connection(account, letter.message_id)
            try:
                refused = self._transaction(opened, envelope_from, recipients, data, letter)
            except _Interrupted as again:
                if again.connection_lost:
                    self._drop(key)
                raise _failure_at(again, account) from None
        opened.sent += 1
        if opened.sent == self._max_emails:
            self._drop(key)
        return refused

    @staticmethod
    def _transaction(
        opened: _Open, envelope_from: str, recipients: list[str], data: bytes, letter: Letter
    ) -> dict[str, tuple[int, bytes]]:
        log = opened.log
        if log is not None:
            log.begin(letter.message_id)
        try:
            refused = send_transaction(opened.smtp, envelope_from, recipients, data, letter.mail_options, letter.rcpt_options)
        except _Interrupted as stop:
            if log is not None:
                log.end(f"failed at {stop.phase.upper()}: {stop.error.__class__.__name__}")
            raise
        if log is not None:
            log.end("sent" if not refused else f"sent; refused {', '.join(refused)}")
        return refused

    def _connection(self, account: AccountInfo | None, message_id: str | None = None) -> _Open:
        key = account.id if account is not None else 0
        opened = self._open.get(key)
        if opened is not None:
            return opened
        if account is None:
            try:
                smtp = self._open_default()
            except (smtplib.SMTPException, OSError) as err:
                stage = "login" if isinstance(err, smtplib.SMTPAuthenticationError) else "connect"
                raise failure(stage, err, None) from None
            opened = self._open[key] = _Open(smtp, None)
            return opened
        log = self._state.smtp_logs.session(account, "send", self._settings)
        try:
            smtp = open_connection(
                account,
                functools.partial(self._state.password_of, account),
                timeout=self._settings.timeout_s,
                ca_file=self._state.config.ca_file,
                ehlo_name=self._state.config.ehlo_name,
                transcript=log,
            )
        except DeliveryError as err:
            if log is not None:
                log.begin(message_id)  # the failed letter's entry names it
                log.end(f"failed: {err}")
                log.close()
            raise
        opened = self._open[key] = _Open(smtp, log)
        return opened

    def _drop(self, key: int) -> None:
        opened = self._open.pop(key, None)
        if opened is not None:
            self._finish(opened)

    @staticmethod
    def _finish(opened: _Open) -> None:
        close_quietly(opened.smtp)
        if opened.log is not None:
            opened.log.close()

    # --- the message log and the signals ---------------------------------------------

    def _record(self, outcome: Outcome) -> None:
        row = self._row(outcome)
        log = self._state.message_log
        record = outcome.letter.record
        if record is not None:
            outcome.record_id = record.id
            log.update(record.id, row)
        elif outcome.status in (SENT, SUPPRESSED):
            self._rows.append(row)
            if len(self._rows) >= log.batch_size:
                self.flush()
        else:
            try:
                outcome.record_id = log.insert(row)
            except sa.exc.SQLAlchemyError:
                # Not in the log means not in the queue: the caller must hear that it failed.
                logger.exception("flask-smtp-accounts could not log undelivered letter %s", outcome.letter.message_id)
                outcome.status = FAILED

    def _row(self, outcome: Outcome) -> dict[str, t.Any]:
        status, now = outcome.status, utcnow()
        if (
            (status == SENT or status == SUPPRESSED)
            and outcome.letter.record is None
            and not outcome.refused
            and not outcome.history
        ):
            return self._delivered_row(outcome, now)
        return self._full_row(outcome, now)

    def _delivered_row(self, outcome: Outcome, now: datetime) -> dict[str, t.Any]:
        """The row of nearly every letter (new, delivered to all), built in one go: a newsletter builds thousands.

        The same as :meth:`_full_row` gives for it (tested).
        """
        letter, choice, account = outcome.letter, outcome.choice, outcome.account
        kept = outcome.data if self._settings.keep_bodies else None
        chosen = choice.account
        return {
            "created_at": now,
            "updated_at": now,
            "status": outcome.status,
            "account_id": account.id if account else None,
            "chosen_account_id": chosen.id if chosen else None,
            "account_label": account.label if account else "",
            "rule": choice.rule,
            "bulk": outcome.bulk,
            "sender": self._sender_text(letter.sender),
            "envelope_from": letter.envelope_from,
            "sent_from": outcome.sent_from,
            "reply_to_added": outcome.reply_to_added,
            "recipients": dump_strings(letter.recipients),
            "pending": "[]",
            "refused": "{}",
            "subject": letter.subject[:998],
            "message_id": letter.message_id or "",
            "size": outcome.size or (len(kept) if kept else 0),
            "attempts": outcome.attempts,
            "next_attempt_at": None,
            "claimed_until": None,
            "error_stage": None,
            "error_code": None,
            "error_reply": None,
            "error": None,
            "history": "[]",
            "options": _options(letter),
            "body": kept,
        }

    def _full_row(self, outcome: Outcome, now: datetime) -> dict[str, t.Any]:
        letter, choice, account = outcome.letter, outcome.choice, outcome.account
        record = letter.record
        error = outcome.error if outcome.status in (FAILED, QUEUED) else None
        if outcome.status in (FAILED, QUEUED):
            body: bytes | None = record.body if record is not None else letter.render(None)
        elif self._settings.keep_bodies:
            body = outcome.data
        else:
            body = None
        refused = outcome.refused
        history = outcome.history
        if record is not None:
            refused = {**{r: v for r, v in record.refused.items() if r not in outcome.delivered}, **refused}
            history = record.history + history
        row: dict[str, t.Any] = {
            "updated_at": now,
            "status": outcome.status,
            "account_id": account.id if account else None,
            "chosen_account_id": choice.account.id if choice.account else None,
            "account_label": account.label if account else "",
            "rule": choice.rule,
            "sent_from": outcome.sent_from,
            "reply_to_added": outcome.reply_to_added,
            "pending": dump_strings(outcome.pending) if outcome.pending else "[]",
            "refused": dumps({r: list(v) for r, v in refused.items()}) if refused else "{}",
            "attempts": outcome.attempts,
            "next_attempt_at": outcome.next_attempt_at,
            "claimed_until": None,
            "error_stage": error.stage if error else None,
            "error_code": error.code if error else None,
            "error_reply": error.reply if error else None,
            "error": describe(error) if error else None,
            "history": dumps(history[-MAX_HISTORY:]) if history else "[]",
            "body": body,
        }
        if outcome.size:
            row["size"] = outcome.size
        if record is None:
            row.update(
                created_at=now,
                bulk=outcome.bulk,
                sender=self._sender_text(letter.sender),
                envelope_from=letter.envelope_from,
                recipients=dump_strings(letter.recipients),
                subject=letter.subject[:998],
                message_id=letter.message_id or "",
                size=outcome.size or (len(body) if body else 0),
                options=_options(letter),
            )
        return row

    def _announce(self, outcome: Outcome) -> None:
        app = self.app
        message = outcome.letter.message
        if outcome.status in (SENT, SUPPRESSED):
            message_sent.send(
                app, message=message, account=outcome.account, rule=outcome.choice.rule,
                suppressed=outcome.status == SUPPRESSED, message_id=outcome.letter.message_id,
            )
        elif outcome.status == QUEUED:
            message_queued.send(
                app, message=message, account=outcome.account, error=outcome.error, record_id=outcome.record_id
            )
        else:
            send_failed.send(
                app, message=message, account=outcome.account, error=outcome.error, message_id=outcome.letter.message_id
            )
