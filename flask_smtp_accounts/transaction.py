"""One SMTP transaction (MAIL, RCPT, DATA, the letter's data) and how far it got when it stopped.

Against a server 10 ms away, MAIL, RCPT and DATA each waiting for their
reply cost three round trips before the letter's data even leaves. A
server that offers PIPELINING (RFC 2920) takes them in one write, and the
letter waits one round trip for their replies and one for the end of its
data. :func:`send_transaction` writes the commands one way or the other
(:class:`Stepwise`, :class:`Pipelined`) and handles their replies, in the
same order either way, in one place, so that a refused recipient, a 4xx on
MAIL or a 5xx on DATA ends the same whichever way the commands went.
"""

from __future__ import annotations

import re
import smtplib
import typing as t

from .connection import TranscriptClient, failure
from .envelope import CRLF, Envelope
from .errors import DeliveryError
from .models import AccountInfo

_LINE_START_DOT = re.compile(rb"(?m)^\.")

#: Gives the next letter's envelope to write with this letter's data, or ``None``.
Ahead = t.Callable[[], Envelope | None]


class Stepwise:
    """Each command written when its turn comes, after the reply to the one before (smtplib's way)."""

    def __init__(self, smtp: smtplib.SMTP) -> None:
        self.smtp = smtp

    def mail(self, sender: str, options: list[str]) -> tuple[int, bytes]:
        return self.smtp.mail(sender, options)

    def rcpt(self, recipient: str, options: list[str]) -> tuple[int, bytes]:
        return self.smtp.rcpt(recipient, options)

    def data(self, data: bytes, ahead: Ahead | None = None) -> tuple[int, bytes]:
        """The data and its end (``smtplib.SMTP.data``); step by step, no envelope goes ahead of its turn."""
        return self.smtp.data(data)

    def abandon(self) -> None:
        """Nothing is left unread: a stopped transaction stopped before its next command."""


class Pipelined:
    """MAIL FROM, every RCPT TO and DATA written at once; then their replies read in order.

    The replies are read one by one, each through the connection's bounded
    reader (``deadlines.py``: within the timeout, under the size caps), so
    a pipelined transaction waits on a server no longer than a stepwise one.
    """

    def __init__(
        self,
        smtp: smtplib.SMTP,
        sender: str,
        sender_options: list[str],
        recipients: t.Sequence[str],
        recipient_options: list[str],
        ahead: Envelope | None = None,
    ) -> None:
        """Write the commands, unless ``ahead``: the same envelope, written with the letter before."""
        self.smtp = smtp
        self._unread = len(recipients) + 2
        mine = Envelope(sender, tuple(sender_options), tuple(recipients), tuple(recipient_options))
        if ahead is None:
            # Built before anything is sent, so that a command smtplib would refuse (a line break in
            # an address, SMTPUTF8 not offered) refuses the whole transaction with nothing written.
            smtp.send(mine.commands(smtp))
        elif ahead != mine:
            _not_this_letter(smtp)

    def _reply(self) -> tuple[int, bytes]:
        self._unread -= 1
        return self.smtp.getreply()

    def mail(self, sender: str, options: list[str]) -> tuple[int, bytes]:
        return self._reply()

    def rcpt(self, recipient: str, options: list[str]) -> tuple[int, bytes]:
        return self._reply()

    def data(self, data: bytes, ahead: Ahead | None = None) -> tuple[int, bytes]:
        """The reply to DATA; after a 354, the letter's data and the reply to its end (as ``smtplib.SMTP.data``).

        ``ahead``: the next letter's envelope, if one is to go in the same
        write as this letter's data (see :func:`send_transaction`).
        """
        code, reply = self._reply()
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        return self._end_data(data, ahead() if ahead is not None else None)

    def _end_data(self, data: bytes, following: Envelope | None) -> tuple[int, bytes]:
        quoted = _LINE_START_DOT.sub(b"..", data)
        if not quoted.endswith(b"\r\n"):
            quoted += b"\r\n"
        smtp = self.smtp
        commands = _commands_or_none(smtp, following)
        if commands is not None and isinstance(smtp, TranscriptClient):
            smtp.send_data_then(quoted + b".\r\n", commands)
            smtp.envelope_ahead = following
        else:
            smtp.send(quoted + b".\r\n")
        return smtp.getreply()

    def abandon(self) -> None:
        """Read the replies still due for a transaction that stopped, so that the next one reads its own.

        RFC 2920, section 3.1: the client must check every reply of the
        group; when DATA was accepted although no recipient was, "the
        client SMTP should send a single dot", an empty letter the server
        then refuses for want of recipients, before RSET.
        """
        while self._unread:
            code, _ = self._reply()
            if self._unread == 0 and code == 354:
                self.smtp.send(f".{CRLF}")
                self.smtp.getreply()


def _commands_or_none(smtp: smtplib.SMTP, following: Envelope | None) -> str | None:
    """The commands of the envelope to write ahead; ``None`` when smtplib would refuse them (then its turn does)."""
    if following is None:
        return None
    try:
        return following.commands(smtp)
    except (ValueError, smtplib.SMTPException):
        return None


def mail_from_options(smtp: smtplib.SMTP, data: bytes, options: t.Sequence[str]) -> list[str]:
    """The options of MAIL FROM for ``data``: the letter's own, after its SIZE when the server takes it."""
    if smtp.does_esmtp and smtp.has_extn("size"):
        return [f"size={len(data)}", *options]
    return list(options)


def _written_ahead(smtp: smtplib.SMTP) -> Envelope | None:
    """Take the envelope written ahead on ``smtp`` with the letter before, if one was."""
    if not isinstance(smtp, TranscriptClient):
        return None
    ahead, smtp.envelope_ahead = smtp.envelope_ahead, None
    return ahead


def _not_this_letter(smtp: smtplib.SMTP) -> t.NoReturn:
    """An envelope went ahead for a letter that was not sent here after all (it went elsewhere, or waits).

    Its replies are unread and its DATA may have opened the data, which
    only the end of data or the end of the connection closes: the
    connection is of no more use. It is closed, as if the server had
    closed it, and the letter at hand goes on a new one.
    """
    smtp.close()
    raise smtplib.SMTPServerDisconnected("the envelope written ahead was for another letter")


def steps_for(
    smtp: smtplib.SMTP,
    sender: str,
    sender_options: list[str],
    recipients: t.Sequence[str],
    recipient_options: list[str],
) -> Stepwise | Pipelined:
    """Pipelined when the server offers PIPELINING and the connection allows it, else step by step.

    The connection allows it when its ``pipelining`` attribute is true:
    ``connection.open_connection`` sets it from the account's flag. Any
    other connection (Flask-Mail's own, for the default route) goes step by step.
    """
    ahead = _written_ahead(smtp)
    if getattr(smtp, "pipelining", False) and smtp.does_esmtp and smtp.has_extn("pipelining"):
        return Pipelined(smtp, sender, sender_options, recipients, recipient_options, ahead)
    if ahead is not None:
        _not_this_letter(smtp)
    return Stepwise(smtp)


class Interrupted(Exception):
    """A transaction stopped; ``phase`` (``mail``, ``rcpt``, ``data``) says how far the letter got."""

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

    def failure(self, account: AccountInfo | None) -> DeliveryError:
        """The :class:`DeliveryError` of the stopped transaction, naming the SMTP command."""
        err = failure("send", self.error, account)
        err.command = self.phase.upper()
        return err


def send_transaction(
    smtp: smtplib.SMTP,
    envelope_from: str,
    recipients: list[str],
    data: bytes,
    mail_options: t.Sequence[str] = (),
    rcpt_options: t.Sequence[str] = (),
    meanwhile: t.Callable[[], None] | None = None,
    ahead: Ahead | None = None,
) -> dict[str, tuple[int, bytes]]:
    """smtplib's ``sendmail``, reply by reply, so that a failure tells how far the letter got.

    The commands go step by step, or pipelined when the server offers
    PIPELINING and the connection allows it; either way each reply is
    handled here, the same way. Returns the refused recipients, as
    ``sendmail`` does. Raises :class:`Interrupted` with ``phase`` ``mail``
    (nothing of the letter reached the server), ``rcpt`` or ``data``.

    ``meanwhile``: work for the round trip the commands take, called once
    they are on their way and before their first reply is read (step by
    step: before MAIL is written). If it raises, the connection is closed,
    since its replies are left unread, and the error propagates.

    ``ahead``: called, pipelined, once DATA was answered 354, for the next
    letter's envelope to go in the same write as this letter's data (RFC
    2920, section 3.1: the data may start a group of commands). The next
    letter then costs one round trip rather than two: its ``steps_for``
    reads the replies to the envelope written ahead (and any other
    transaction on this connection closes it, see :func:`_not_this_letter`).
    A server takes no letter without its data, so an envelope written
    ahead sends nothing by itself.
    """
    phase = "mail"
    steps: Stepwise | Pipelined = Stepwise(smtp)
    try:
        smtp.ehlo_or_helo_if_needed()
        options = mail_from_options(smtp, data, mail_options)
        steps = steps_for(smtp, envelope_from, options, recipients, list(rcpt_options))
        if meanwhile is not None:
            _while_waiting(smtp, meanwhile)
        code, reply = steps.mail(envelope_from, options)
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, reply, envelope_from)
        phase = "rcpt"
        refused: dict[str, tuple[int, bytes]] = {}
        for rcpt in recipients:
            code, reply = steps.rcpt(rcpt, list(rcpt_options))
            if code == 421:
                raise smtplib.SMTPResponseException(code, reply)
            if code not in (250, 251):
                refused[rcpt] = (code, reply)
        if len(refused) == len(recipients):
            raise smtplib.SMTPRecipientsRefused(refused)
        phase = "data"
        code, reply = steps.data(data, ahead)
        if code != 250:
            raise smtplib.SMTPDataError(code, reply)
        return refused
    except (smtplib.SMTPException, OSError) as err:
        stop = Interrupted(phase, err)
        if stop.connection_lost:
            smtp.close()
        elif not _ended_with_envelope_ahead(smtp):
            try:
                steps.abandon()
                smtp.rset()
            except (smtplib.SMTPException, OSError):
                smtp.close()
        raise stop from None


def _ended_with_envelope_ahead(smtp: smtplib.SMTP) -> bool:
    """Whether the data was refused with the next letter's envelope written ahead (not the case to RSET).

    The end of data ends a transaction, refused or not; an RSET written
    now would reach the server after that envelope's DATA, as data of
    the next letter.
    """
    return isinstance(smtp, TranscriptClient) and smtp.envelope_ahead is not None


def _while_waiting(smtp: smtplib.SMTP, work: t.Callable[[], None]) -> None:
    try:
        work()
    except BaseException:
        smtp.close()
        raise
