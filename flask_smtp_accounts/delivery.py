"""Sending one letter: the flow, and nothing but the flow.

A :class:`Dispatcher` lives as long as one Flask-Mail connection block.
:meth:`Dispatcher.deliver` takes a letter through these steps:

1. **Choose** its account (``routing.py``); none: Flask-Mail's own route.
   A letter for the outbox (``outbox()``, the ``outbox_all`` and
   ``outbox_bulk`` settings) is stored ``queued`` here, and a drainer
   (``outbox.py``) takes it through the next steps later.
2. **Write ahead**: commit its message log row, ``sending``, with its body
   (``message_log.py``). A row that cannot be written stops the letter here.
   (A drained letter has its row already, ``claimed``; it moves to
   ``sending`` after its envelope left, before its content does:
   :meth:`Dispatcher.send_claimed`.)
3. **Try** the chain (``failover.py``): the account, then its backups, each
   skipped while it cools down (``health.py``), on the block's connection of
   each (opened on first use), one SMTP transaction each (``connection.py``),
   to the recipients no server has accepted yet.
4. **Settle** the status: sent, failed, or queued (``retry.py``).
5. **Update** the row, announce the outcome (``signals.py``), and raise
   :class:`DeliveryError` when nothing delivered or queued the letter.

**Exactly once.** Once a server accepted a letter for a recipient, nothing
sends it to that recipient again. The one automatic second try on the same
account is for a reused connection that fails at ``MAIL FROM`` (the server
closed it while idle): nothing of the letter had reached the server then.

The module is longer than most (about 600 lines) because a block's state
lives in its one :class:`Dispatcher`: its open connections and their slots
(``max_connections``), the accounts seen cooling down or at a limit, the
rows it stored, and in a drainer the letter whose update waits for the
next letter's round trip. Each step's own logic lives in the module named above;
what stays here is the order of the steps and that state.
"""

from __future__ import annotations

import logging
import smtplib
import time
import typing as t
from dataclasses import dataclass

import sqlalchemy as sa

from . import retry
from .connection import close_quietly
from .connection_slots import ConnectionSlots, Slot
from .directory import Directory
from .envelope import Envelope
from .errors import (
    CONNECTION,
    PERMANENT,
    ConnectionsBusyError,
    DeliveryError,
    QuotaExceededError,
    failure_kind,
)
from .failover import RouteHeaders, route_chain, route_headers
from .headers import encode_address, set_header
from .health import Health
from .letter import Letter, Outcome
from .message_info import FAILED, QUEUED, SENT, SUPPRESSED, MessageInfo
from .message_log import Claim, MessageLog
from .message_rows import changes, row_of
from .models import AccountInfo, utcnow
from .outbox_block import OutboxBlock
from .quotas import Quotas, Reservation, reached_server, waits_for_slot
from .routing import Choice, choose_route, is_bulk, split_sender
from .settings import SettingsInfo
from .signals import account_failed, message_queued, message_sent, quota_reached, send_failed
from .smtp_logs import SMTPLogs
from .transaction import Ahead, Interrupted, mail_from_options, send_transaction

logger = logging.getLogger("flask_smtp_accounts")

#: How often an inline send looks for a free connection slot of a capped account (``max_connections``).
SLOT_POLL_S = 0.05

#: Opens an account's connection, logged in, reporting to a transcript, with a timeout (``connection.open_connection``).
AccountOpener = t.Callable[[AccountInfo, t.Any, float], smtplib.SMTP]


class DefaultRoute(t.Protocol):
    """Flask-Mail's own server, for a letter no account carries (``flask_mail_hook.py``)."""

    #: Flask-Mail's ``MAIL_SUPPRESS_SEND``: no letter goes to any server.
    suppress: bool

    def send(
        self, letter: Letter, envelope_from: str, recipients: list[str], data: bytes
    ) -> dict[str, tuple[int, bytes]]:
        """Send ``letter``; return the refused recipients; raise :class:`DeliveryError`."""

    def close(self) -> None:
        """End the route's connection, if it keeps one."""


class _ClaimLost(Exception):
    """The drainers' loop: the claim no longer holds the row about to be sent (another drainer took it)."""


@dataclass
class _Open:
    smtp: smtplib.SMTP
    log: t.Any
    sent: int = 0


class Dispatcher:
    """Routes, sends and logs the letters of one connection block (one thread), from one settings snapshot."""

    def __init__(
        self,
        settings: SettingsInfo,
        *,
        directory: Directory,
        health: Health,
        quotas: Quotas,
        message_log: MessageLog,
        smtp_logs: SMTPLogs,
        open_account: AccountOpener,
        default: DefaultRoute,
        max_emails: int | None,
        app: t.Any,
        slots: ConnectionSlots,
    ) -> None:
        self._settings = settings
        self._slots = slots
        self._directory = directory
        self._health = health
        self._quotas = quotas
        self._log = message_log.for_block()
        self._smtp_logs = smtp_logs
        self._open_account = open_account
        self._default = default
        self._max_emails = max_emails
        #: The app of the block, the sender of its signals.
        self.app = app
        self._open: dict[int, _Open] = {}
        self._backups: dict[int, AccountInfo | None] = {}
        #: Accounts found cooling down in this block: not asked again for each letter.
        self._cooling: dict[int, DeliveryError] = {}
        #: Accounts found at a letter limit in this block: not asked again before their next slot.
        self._full: dict[int, QuotaExceededError] = {}
        #: The connection slot this block holds for each capped account (``max_connections``).
        self._held: dict[int, Slot] = {}
        #: Rows this block stored in the outbox, announced when it ends (``letters_queued``).
        self.stored: list[int] = []
        #: The drainers' loop (:meth:`send_claimed`): the last letter sent, whose row update
        #: waits for the next letter's round trip, with that update; the work for the round trip of the
        #: letter being sent; the row of that letter once ``sending``; a letter settled meanwhile, whose
        #: signal is still due.
        self._behind: tuple[Outcome, dict[str, t.Any]] | None = None
        self._meanwhile: t.Callable[[], None] | None = None
        #: The drainers' loop: the letter after the one being sent, whose envelope may go with its data.
        self._following: tuple[MessageInfo, Letter] | None = None
        self._sending: int | None = None
        self._settled: Outcome | None = None

    # --- one letter -----------------------------------------------------------

    def deliver(self, letter: Letter, *, outbox: OutboxBlock | None = None) -> Outcome:
        """Route, send and log ``letter``; raise :class:`DeliveryError` when nothing delivered or queued it.

        ``outbox``: the ``outbox()`` block the letter was sent in: store it
        queued instead (as the outbox settings do for every or every bulk letter).
        """
        bulk = is_bulk(letter.headers) if letter.bulk is None else letter.bulk
        choice = self._choose(letter, bulk)
        outcome = Outcome(letter, choice, bulk, pending=list(letter.recipients), body=letter.render())
        settings = self._settings
        if self._default.suppress:
            self._suppress(outcome)
        elif outbox is not None or settings.outbox_all or (bulk and settings.outbox_bulk):
            if not self._store(outcome, outbox):
                return outcome  # the block writes and announces it with its group
        else:
            ahead = row_of(outcome, keep_bodies=True, now=utcnow())
            outcome.record_id = self._log.write_ahead(ahead)
            self._attempt(outcome, queue=self._settings.queue_undelivered)
            self._record(outcome, written=ahead)
        self._announce(outcome)
        if outcome.undelivered:
            assert outcome.error is not None
            outcome.error.record_id = outcome.record_id
            raise outcome.error
        return outcome

    @property
    def message_log(self) -> MessageLog:
        """The block's view of the message log: its writes share the dispatcher's one database connection."""
        return self._log

    def redeliver(self, record: MessageInfo, letter: Letter, *, requeue: bool) -> Outcome:
        """Send a letter of the message log again, to its pending recipients, and update its row.

        The caller has made the row ``sending`` (its write-ahead); it is
        updated before this returns. ``requeue``: a temporary failure goes
        back to the queue (a retry run) rather than to failed (a resend).
        """
        self.settle_behind()
        self._sending = record.id
        outcome = self._send_again(record, letter, requeue=requeue)
        self._settle(outcome, self._row(outcome))
        self._announce(outcome)
        return outcome

    def send_claimed(
        self,
        record: MessageInfo,
        letter: Letter,
        claim: Claim,
        following: tuple[MessageInfo, Letter] | None = None,
    ) -> Outcome | None:
        """The drainers' loop: send a ``claimed`` letter; a temporary failure puts it back in the queue.

        Its envelope (MAIL, RCPT, DATA) goes to the server first, and while
        it travels one transaction updates the row of the letter sent before
        this one and moves this one to ``sending`` (when the envelope went
        ahead with the letter before, its replies are already in, and that
        transaction comes first): the letter's content leaves only after
        that commit, and a server takes no letter without its content. This
        letter's own update then waits for the next letter's transaction in
        turn, or for :meth:`settle_behind`: a drainer commits once a letter.

        ``following``: the letter the loop sends next. When it will go on
        the same connection, its envelope is written with this letter's
        data (:func:`transaction.send_transaction`'s ``ahead``), and its
        replies are there when its turn comes: one round trip a letter
        rather than two. It stays ``claimed`` until then.

        Returns ``None`` when the claim no longer held the row (its lease
        ran out and another drainer took it): nothing of its content was sent.
        """
        self._meanwhile = lambda: self._settle_and_begin(claim, record.id)
        self._following = following
        try:
            outcome = self._send_again(record, letter, requeue=True)
        except _ClaimLost:
            return None
        finally:
            self._following = None
        self._behind = (outcome, self._row(outcome))
        return outcome

    def settle_behind(self) -> None:
        """Update the row of the last letter :meth:`send_claimed` sent, if it still waits for a next letter."""
        behind, self._behind = self._behind, None
        if behind is not None:
            self._settle(*behind)
            self._announce(behind[0])

    def _send_again(self, record: MessageInfo, letter: Letter, *, requeue: bool) -> Outcome:
        letter.record = record
        choice = self._choose(letter, bool(letter.bulk))
        outcome = Outcome(
            letter, choice, bool(letter.bulk), pending=list(letter.recipients), body=record.body
        )
        outcome.record_id = record.id
        try:
            self._attempt(outcome, queue=requeue)  # a claimed letter's content leaves after _catch_up
            self._catch_up()  # no route got as far as a transaction: the same work, now
        except BaseException:
            self._meanwhile = None
            if self._sending == record.id:  # not when the claim was lost: the row never became sending
                self._log.update(
                    record.id,
                    {
                        "status": FAILED,
                        "claimed_until": None,
                        "updated_at": utcnow(),
                        "error": "interrupted while sending: the server may have accepted it; check before resending",
                    },
                )
            raise
        finally:
            self._announce_settled()
        return outcome

    def _choose(self, letter: Letter, bulk: bool) -> Choice:
        """The route for ``letter`` (``routing.py``), from this block's settings and accounts."""
        return choose_route(self._settings, self._directory.candidates, letter.sender, None, bulk)

    def _catch_up(self) -> None:
        """Do the work a claimed letter carries for its first round trip, once (:meth:`send_claimed`)."""
        work, self._meanwhile = self._meanwhile, None
        if work is not None:
            work()

    def _settle_and_begin(self, claim: Claim, record_id: int) -> None:
        """One transaction: the update of the letter behind, if any, and the write-ahead of ``record_id``."""
        behind = self._behind
        if behind is None:
            began = self._log.begin_sending(record_id, claim.until, claim=claim)
        else:
            began = self._settle(*behind, then=(claim, record_id))
            self._behind, self._settled = None, behind[0]
        if began is None:
            raise _ClaimLost(record_id)
        self._sending = record_id

    def _announce_settled(self) -> None:
        settled, self._settled = self._settled, None
        if settled is not None:
            self._announce(settled)

    def close(self) -> None:
        """Close every connection the block opened, and give back its connection slots."""
        self.settle_behind()
        for opened in self._open.values():
            self._finish(opened)
        self._open.clear()
        try:
            self._default.close()
        finally:
            self._log.close()
            held, self._held = self._held, {}
            for slot in held.values():
                self._slots.free(slot)

    # --- steps ----------------------------------------------------------------

    def _suppress(self, outcome: Outcome) -> None:
        """As Flask-Mail with ``MAIL_SUPPRESS_SEND``: nothing goes out; the letter is logged as suppressed."""
        account = outcome.choice.account
        headers = self._headers(outcome.letter, account)
        if account is None:
            self._default.send(outcome.letter, headers.envelope_from, outcome.pending, b"")
        outcome.accepted(account, headers, {}, outcome.body or b"")
        outcome.status = SUPPRESSED
        outcome.attempts = 1
        outcome.record_id = self._log.write_ahead(self._row(outcome))

    def _store(self, outcome: Outcome, block: OutboxBlock | None) -> bool:
        """Put the letter in the outbox: its row, ``queued`` and due now, names the account chosen for it.

        ``False``: the row waits in the block of ``outbox(batch=N)``, which
        writes it with its group; else it is committed now.
        """
        outcome.status = QUEUED
        outcome.account = outcome.choice.account
        outcome.next_attempt_at = utcnow()
        row = row_of(outcome, keep_bodies=True, now=outcome.next_attempt_at)
        if block is not None and block.keeps_rows:
            block.take(row, outcome, self._announce)
            return False
        outcome.record_id = self._log.store(row)
        self.stored.append(outcome.record_id)
        return True

    def _attempt(self, outcome: Outcome, *, queue: bool) -> None:
        """Try the chosen route and, while recipients are pending, its backups; then settle the status."""
        account = outcome.choice.account
        if account is None:
            self._try(outcome, None)
        else:
            queued = queue and outcome.letter.record is not None  # a queued letter, sent by a retry run
            for route in route_chain(account, self._backup):
                if not self._try(outcome, route) or not outcome.pending:
                    break
                if queued and waits_for_slot(outcome.error, route):
                    break
        prior = outcome.letter.record.attempts if outcome.letter.record else 0
        retry.settle(outcome, queue=queue, settings=self._settings, prior_attempts=prior)

    def _try(self, outcome: Outcome, account: AccountInfo | None) -> bool:
        """Send through one route; ``True`` when the next route should be tried."""
        letter = outcome.letter
        headers = self._headers(letter, account)
        data = self._render(outcome, headers)
        try:
            if account is None:
                outcome.tried = True
                self._catch_up()  # Flask-Mail's own connection sends the content with the commands
                refused = self._default.send(letter, headers.envelope_from, outcome.pending, data)
            else:
                refused = self._send_on(account, headers.envelope_from, outcome, data)
        except DeliveryError as err:
            outcome.failed(account, err)
            kind = failure_kind(err)
            if (
                kind == CONNECTION
                and account is not None
                and err.stage != "cool-down"
                and not isinstance(err, ConnectionsBusyError)
            ):
                self._cool_down(account, err)
                account_failed(self.app, account, err, self._settings.cooldown_s)
            return bool(outcome.pending) if err.refused else kind != PERMANENT
        outcome.accepted(account, headers, refused, data)
        return bool(outcome.pending)

    def _cool_down(self, account: AccountInfo, err: DeliveryError) -> None:
        if self._settings.cooldown_s > 0:
            self._cooling[account.id] = DeliveryError(
                "cool-down",
                f"skipped after a failure: {err}",
                account_id=account.id,
                host=account.host,
                port=account.port,
            )
        try:
            self._health.failed(account, err, self._settings.cooldown_s)
        except sa.exc.SQLAlchemyError:
            # The letter's own row says what happened; only other processes miss the note.
            logger.exception("flask-smtp-accounts could not note the failure of account %s", account.id)

    @staticmethod
    def _headers(letter: Letter, account: AccountInfo | None) -> RouteHeaders:
        if account is None:
            return RouteHeaders(None, None, letter.envelope_from or split_sender(letter.sender)[1])
        return route_headers(letter.sender, letter.envelope_from, bool(letter.reply_to), account)

    @staticmethod
    def _render(outcome: Outcome, headers: RouteHeaders) -> bytes:
        """The letter as the route sends it: its body (rendered once), with the route's From and Reply-To."""
        return Dispatcher._routed(
            outcome.body if outcome.body is not None else outcome.letter.render(), headers
        )

    @staticmethod
    def _routed(data: bytes, headers: RouteHeaders) -> bytes:
        if headers.from_header is not None:
            data = set_header(data, "From", encode_address(headers.from_header))
        if headers.reply_to:
            data = set_header(data, "Reply-To", encode_address(headers.reply_to))
        return data

    def _backup(self, account_id: int) -> AccountInfo | None:
        if account_id not in self._backups:
            self._backups[account_id] = self._directory.account(account_id)
        return self._backups[account_id]

    # --- connections ------------------------------------------------------------

    def _send_on(
        self, account: AccountInfo, envelope_from: str, outcome: Outcome, data: bytes
    ) -> dict[str, tuple[int, bytes]]:
        """One SMTP transaction on the block's connection of ``account``, within the account's limits."""
        reservation = self._reserve(account, outcome)
        try:
            refused = self._transact_on(account, envelope_from, outcome, data)
        except BaseException as err:
            self._quotas.finish(reservation, reached=reached_server(err))
            raise
        self._quotas.finish(reservation, reached=True)
        return refused

    def _reserve(self, account: AccountInfo, outcome: Outcome) -> Reservation | None:
        """A slot within the account's limits (``quotas.py``); an account found full stays full in this block."""
        full = self._full.get(account.id)
        if full is not None and full.retry_at is not None and full.retry_at > utcnow():
            # A new error each time: each letter's caller gets its own (with its own record_id).
            raise QuotaExceededError(
                account.id, full.limit, full.allowed, full.retry_at, host=account.host, port=account.port
            )
        try:
            return self._quotas.reserve(account, len(outcome.pending))
        except QuotaExceededError as err:
            if err.limit != "recipient_limit_per_day":  # a letter with fewer recipients may fit that one
                self._full[account.id] = err
            quota_reached.send(self.app, account=account, limit=f"{err.allowed} {err.reason}", error=err)
            raise

    def _transact_on(
        self, account: AccountInfo, envelope_from: str, outcome: Outcome, data: bytes
    ) -> dict[str, tuple[int, bytes]]:
        """One SMTP transaction on the block's connection of ``account``."""
        letter = outcome.letter
        opened = self._connection(account, outcome)
        reused = opened.sent > 0
        ahead = self._ahead_on(account, opened)
        try:
            refused = self._transaction(
                opened, envelope_from, outcome.pending, data, letter, self._catch_up, ahead
            )
        except Interrupted as stop:
            if stop.connection_lost:
                self._drop(account.id)
            if not (reused and stop.phase == "mail" and stop.connection_lost):
                raise stop.failure(account) from None
            # The server closed the idle connection between letters: reconnect once.
            opened = self._connection(account, outcome)
            ahead = self._ahead_on(account, opened)
            try:
                refused = self._transaction(
                    opened, envelope_from, outcome.pending, data, letter, self._catch_up, ahead
                )
            except Interrupted as again:
                if again.connection_lost:
                    self._drop(account.id)
                raise again.failure(account) from None
        except BaseException:
            if opened.smtp.sock is None:  # the work done meanwhile failed; the replies were left unread
                self._drop(account.id)
            raise
        opened.sent += 1
        if opened.sent == self._max_emails:
            self._drop(account.id)
        return refused

    @staticmethod
    def _transaction(
        opened: _Open,
        envelope_from: str,
        recipients: list[str],
        data: bytes,
        letter: Letter,
        meanwhile: t.Callable[[], None],
        ahead: Ahead | None,
    ) -> dict[str, tuple[int, bytes]]:
        log = opened.log
        if log is not None:
            log.begin(letter.message_id)
        try:
            refused = send_transaction(
                opened.smtp,
                envelope_from,
                recipients,
                data,
                letter.mail_options,
                letter.rcpt_options,
                meanwhile=meanwhile,
                ahead=ahead,
            )
        except Interrupted as stop:
            if log is not None:
                log.end(f"failed at {stop.phase.upper()}: {stop.error.__class__.__name__}")
            raise
        if log is not None:
            log.end("sent" if not refused else f"sent; refused {', '.join(refused)}")
        return refused

    def _ahead_on(self, account: AccountInfo, opened: _Open) -> Ahead | None:
        """What gives the next letter's envelope, to go with this letter's data on ``opened`` (:meth:`send_claimed`).

        Only when the next letter would go on this connection next: routed
        to this account, which is not at a limit here, with the connection
        allowed one more letter (``MAIL_MAX_EMAILS``). Anything else that
        decides against it later (its limit reached meanwhile, its claim
        lost) closes the connection before any of its data leaves.
        """
        following = self._following
        if following is None or (self._max_emails and opened.sent + 2 > self._max_emails):
            return None
        record, letter = following

        def ahead() -> Envelope | None:
            choice = self._choose(letter, bool(letter.bulk))
            if choice.account is None or choice.account.id != account.id or account.id in self._full:
                return None
            headers = self._headers(letter, account)
            body = record.body if record.body is not None else letter.render()
            options = mail_from_options(opened.smtp, self._routed(body, headers), letter.mail_options)
            return Envelope(
                headers.envelope_from, tuple(options), tuple(letter.recipients), tuple(letter.rcpt_options)
            )

        return ahead

    def _connection(self, account: AccountInfo, outcome: Outcome) -> _Open:
        """The block's connection of ``account``; before opening one, its cool-down is read (every process's).

        A capped account (``max_connections``) needs a slot first; an inline
        send waits for one up to ``timeout_s``, then fails the route with
        :class:`ConnectionsBusyError` (temporary: backups, or the queue).
        """
        opened = self._open.get(account.id)
        if opened is not None and self._slot_kept(account):
            return opened
        cooling = self._cooling.get(account.id) or self._health.cooling(account)
        if cooling is not None:
            self._cooling[account.id] = cooling
            raise cooling
        # A claimed letter's row work waits for no connection to open (a slot, a handshake, a timeout).
        self._catch_up()
        if account.max_connections:
            self._wait_for_slot(account)
        outcome.tried = True
        log = self._smtp_logs.session(account, "send", self._settings)
        try:
            smtp = self._open_account(account, log, self._settings.timeout_s)
        except DeliveryError as err:
            if log is not None:
                log.begin(outcome.letter.message_id)  # the failed letter's entry names it
                log.end(f"failed: {err}")
                log.close()
            raise
        opened = self._open[account.id] = _Open(smtp, log)
        return opened

    def hold_slot(self, account: AccountInfo) -> bool:
        """Take a connection slot of ``account`` for this block now, unless it has one; ``False``: all are busy."""
        if not account.max_connections or account.id in self._held:
            return True
        slot = self._slots.take(account.id, account.max_connections)
        if slot is None:
            return False
        self._held[account.id] = slot
        return True

    def _slot_kept(self, account: AccountInfo) -> bool:
        """Whether the open connection of ``account`` may stay open: its slot renewed (once half its lease is gone).

        A slot lost (the connection sat idle past the lease, and another
        holder took it) closes the connection.
        """
        slot = self._held.get(account.id)
        if slot is None or not slot.due_for_renewal(utcnow()) or self._slots.renew(slot):
            return True
        del self._held[account.id]
        self._drop(account.id)
        return False

    def _wait_for_slot(self, account: AccountInfo) -> None:
        deadline = time.monotonic() + self._settings.timeout_s
        while not self.hold_slot(account):
            if time.monotonic() >= deadline:
                raise ConnectionsBusyError(
                    account.id, account.max_connections, host=account.host, port=account.port
                )
            time.sleep(SLOT_POLL_S)

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

    def _record(self, outcome: Outcome, *, written: t.Mapping[str, t.Any]) -> None:
        """Update the letter's row: only the columns that differ from ``written``, its write-ahead."""
        self._settle(outcome, changes(written, self._row(outcome)))

    def _row(self, outcome: Outcome) -> dict[str, t.Any]:
        """The letter's row as its attempt left it."""
        return row_of(outcome, keep_bodies=self._settings.keep_bodies, now=utcnow())

    def _settle(
        self, outcome: Outcome, row: dict[str, t.Any], *, then: tuple[Claim, int] | None = None
    ) -> MessageInfo | None:
        """Write ``row`` to the letter's row; ``then`` (a claim, a row id): that letter's write-ahead with it."""
        assert outcome.record_id is not None
        return self._log.settle(
            outcome.record_id,
            row,
            message_id=outcome.letter.message_id,
            delivered=bool(outcome.delivered),
            then=then,
        )

    def _announce(self, outcome: Outcome) -> None:
        app = self.app
        message = outcome.letter.message
        if outcome.status in (SENT, SUPPRESSED):
            message_sent.send(
                app,
                message=message,
                account=outcome.account,
                rule=outcome.choice.rule,
                suppressed=outcome.status == SUPPRESSED,
                message_id=outcome.letter.message_id,
            )
        elif outcome.status == QUEUED:
            message_queued.send(
                app,
                message=message,
                account=outcome.account,
                error=outcome.error,
                record_id=outcome.record_id,
            )
        else:
            send_failed.send(
                app,
                message=message,
                account=outcome.account,
                error=outcome.error,
                message_id=outcome.letter.message_id,
            )
