"""Sending letters through their routes, inside one ``mail.connect()`` block.

A :class:`Dispatcher` lives as long as one Flask-Mail connection block. It
opens each account's connection on first use, reuses it for every later
letter routed to the same account, and closes them all at the end.
"""

from __future__ import annotations

import smtplib
import typing as t
from dataclasses import dataclass
from email.utils import formataddr

from flask import current_app

from .connection import close_quietly, failure, open_connection
from .errors import DeliveryError
from .models import AccountInfo
from .routing import Choice, address_key, choose, is_bulk, split_sender
from .settings import SettingsInfo
from .signals import message_sent, send_failed

if t.TYPE_CHECKING:
    from .extension import _State


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


@dataclass
class _Open:
    smtp: smtplib.SMTP
    log: t.Any
    sent: int = 0


def choose_route(state: _State, settings: SettingsInfo, sender: str | tuple[str, str], headers: t.Mapping[str, str] | None, bulk: bool | None = None) -> Choice:
    """The account a letter from ``sender`` goes through, and the rule that chose it."""
    from .routing import RULE_DISABLED

    if not settings.enabled:
        return Choice(None, RULE_DISABLED)
    name, address = split_sender(sender)
    candidates = state.directory.candidates(address_key(address)) if address else ()
    return choose(candidates, name, is_bulk(headers) if bulk is None else bulk)


def from_header(sender: str | tuple[str, str], account: AccountInfo) -> str | None:
    """The From header to write, or ``None`` to keep the caller's.

    The account's sender name goes in only when the letter has no display
    name of its own.
    """
    name, address = split_sender(sender)
    if name or not account.sender_name:
        return None
    return formataddr((account.sender_name, address))


class Dispatcher:
    """Routes and sends the letters of one connection block."""

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
        self._suppress = suppress
        self._max_emails = max_emails
        self._open_default = open_default
        self._default: smtplib.SMTP | None = None
        self._default_sent = 0
        self._open: dict[int, _Open] = {}

    def deliver(self, letter: Letter) -> Choice:
        """Choose the route of ``letter`` and send it there."""
        choice = choose_route(self._state, self._settings, letter.sender, letter.headers)
        account = choice.account
        if account is None:
            self._send_default(letter)
        else:
            self._send_through(account, letter)
        message_sent.send(
            current_app._get_current_object(),  # type: ignore[attr-defined]
            message=letter.message, account=account, rule=choice.rule, suppressed=self._suppress,
        )
        return choice

    def close(self) -> None:
        """Close every connection the block opened."""
        for opened in self._open.values():
            self._finish(opened)
        self._open.clear()
        close_quietly(self._default)
        self._default = None

    def _send_default(self, letter: Letter) -> None:
        if self._suppress:
            return
        if self._default is None:
            self._default = self._open_default()
        self._default.sendmail(
            letter.envelope_from or _plain(letter.sender),
            letter.recipients,
            letter.render(None),
            letter.mail_options,
            letter.rcpt_options,
        )
        self._default_sent += 1
        if self._default_sent == self._max_emails:
            close_quietly(self._default)
            self._default, self._default_sent = None, 0

    def _send_through(self, account: AccountInfo, letter: Letter) -> None:
        data = letter.render(from_header(letter.sender, account))
        if self._suppress:
            return
        envelope_from = letter.envelope_from or account.sender_email
        try:
            opened = self._connection(account)
            reused = opened.sent > 0
            try:
                self._sendmail(opened, envelope_from, letter, data)
            except (smtplib.SMTPServerDisconnected, ConnectionError):
                if not reused:
                    raise
                # The server dropped an idle connection between letters: reconnect once.
                self._drop(account.id)
                opened = self._connection(account)
                self._sendmail(opened, envelope_from, letter, data)
        except DeliveryError as err:
            self._failed(letter, account, err)
            raise
        except (smtplib.SMTPException, OSError) as err:
            self._drop(account.id)
            error = failure("send", err, account)
            self._failed(letter, account, error)
            raise error from None
        if opened.sent == self._max_emails:
            self._drop(account.id)

    def _sendmail(self, opened: _Open, envelope_from: str, letter: Letter, data: bytes) -> None:
        if opened.log is not None:
            opened.log.begin(letter.message_id)
        try:
            opened.smtp.sendmail(envelope_from, letter.recipients, data, letter.mail_options, letter.rcpt_options)
        except BaseException as err:
            if opened.log is not None:
                opened.log.end(f"failed: {err.__class__.__name__}")
            raise
        opened.sent += 1
        if opened.log is not None:
            opened.log.end("sent")

    def _connection(self, account: AccountInfo) -> _Open:
        opened = self._open.get(account.id)
        if opened is None:
            log = self._state.smtp_logs.session(account, "send", self._settings)
            try:
                smtp = open_connection(
                    account,
                    self._state.password_of(account),
                    timeout=self._settings.timeout_s,
                    ca_file=self._state.config.ca_file,
                    ehlo_name=self._state.config.ehlo_name,
                    transcript=log,
                )
            except DeliveryError as err:
                if log is not None:
                    log.end(f"failed: {err}")
                    log.close()
                raise
            opened = self._open[account.id] = _Open(smtp, log)
        return opened

    def _drop(self, account_id: int) -> None:
        opened = self._open.pop(account_id, None)
        if opened is not None:
            self._finish(opened)

    @staticmethod
    def _finish(opened: _Open) -> None:
        close_quietly(opened.smtp)
        if opened.log is not None:
            opened.log.close()

    def _failed(self, letter: Letter, account: AccountInfo, error: DeliveryError) -> None:
        send_failed.send(
            current_app._get_current_object(),  # type: ignore[attr-defined]
            message=letter.message, account=account, error=error,
        )


def _plain(sender: str | tuple[str, str]) -> str:
    return split_sender(sender)[1]
