"""SMTP conversations: opening an account's connection (TLS, AUTH, timeout, transcript) and one transaction.

The SMTP classes here are smtplib's with one addition: when given a
:class:`Transcript`, they report each line of the conversation to it, with
the AUTH exchange already redacted, so that nothing secret can reach a log.
Without a transcript they do no extra work.
"""

from __future__ import annotations

import binascii
import functools
import smtplib
import socket
import ssl
import time
import typing as t

from flask import current_app

from .deadlines import REPLY_MAX_BYTES, REPLY_MAX_LINES, BoundedReplies, ReplyTimeout, ReplyTooLarge
from .errors import DeliveryError
from .models import AccountInfo
from .sasl import SASLClient, login_xoauth2
from .texts import N_, Text

if t.TYPE_CHECKING:
    from .envelope import Envelope
    from .oauth2 import AccessTokens

REDACTED = "[redacted]"


class Transcript(t.Protocol):
    """Receives an SMTP conversation, line by line, secrets removed."""

    def client(self, line: str) -> None:
        """A command the client sent."""

    def server(self, code: int, lines: list[str]) -> None:
        """A reply from the server."""

    def event(self, text: str) -> None:
        """A fact about the connection: address, TLS, timing."""

    def data(self, payload: bytes) -> None:
        """The letter's data, as sent after DATA."""


class TranscriptClient(SASLClient):
    """Reports the conversation of an smtplib client to a transcript, the AUTH exchange redacted."""

    transcript: Transcript | None = None
    #: Whether a transaction may pipeline its commands when the server offers it (``transaction.py``).
    pipelining = False
    #: The next letter's envelope, its MAIL, RCPT and DATA written with a letter's data, their replies
    #: unread (``transaction.py``); ``None`` when nothing went ahead.
    envelope_ahead: Envelope | None = None
    _started = 0.0

    sock: t.Any
    command_encoding: str

    def send(self, s: t.Any) -> None:
        transcript = self.transcript
        if transcript is not None:
            if isinstance(s, bytes) and not self._in_auth:
                transcript.data(s)
            else:
                # Raw bytes sent during AUTH never reach data(): they are redacted like any AUTH line.
                line = (s.decode("ascii", "replace") if isinstance(s, bytes) else s).rstrip("\r\n")
                if self._in_auth:
                    mechanism = line.split(" ", 2)[:2]
                    line = (
                        f"{mechanism[0]} {mechanism[1]} {REDACTED}"
                        if mechanism[0].upper() == "AUTH" and len(mechanism) == 2
                        else REDACTED
                    )
                _commands_to(transcript, line)
        super().send(s)  # type: ignore[misc]

    def send_data_then(self, data: bytes, commands: str) -> None:
        """A letter's data and the next letter's MAIL, RCPT and DATA in one write.

        One write, so one packet where it fits: written separately, Nagle's
        algorithm would hold the envelope until the data is acknowledged.
        """
        transcript = self.transcript
        if transcript is not None:
            transcript.data(data)
            _commands_to(transcript, commands.rstrip("\r\n"))
        super().send(data + commands.encode(self.command_encoding))  # type: ignore[misc]

    def close(self) -> None:
        self.envelope_ahead = None
        super().close()  # type: ignore[misc]

    def getreply(self) -> tuple[int, bytes]:
        code, message = super().getreply()  # type: ignore[misc]
        transcript = self.transcript
        if transcript is not None:
            if self._in_auth and code == 334:
                lines = [REDACTED]
            else:
                lines = message.decode("utf-8", "replace").split("\n")
            transcript.server(code, lines)
        return code, message

    def connect(
        self, host: str = "localhost", port: int = 0, source_address: t.Any = None
    ) -> tuple[int, bytes]:
        self._started = time.perf_counter()
        if self.transcript is not None:
            self.transcript.event(f"connecting to {host}:{port}")
        reply = super().connect(host, port, source_address)  # type: ignore[misc]
        if self.transcript is not None:
            self._report_socket()
        return t.cast(tuple[int, bytes], reply)

    def starttls(self, *args: t.Any, **kwargs: t.Any) -> tuple[int, bytes]:
        reply = super().starttls(*args, **kwargs)  # type: ignore[misc]
        if self.transcript is not None:
            self._report_socket()
        return t.cast(tuple[int, bytes], reply)

    def _report_socket(self) -> None:
        assert self.transcript is not None
        elapsed = (time.perf_counter() - self._started) * 1000
        try:
            peer = self.sock.getpeername()
        except OSError:
            peer = ("?", 0)
        facts = [f"connected to {peer[0]}:{peer[1]} after {elapsed:.1f} ms"]
        if isinstance(self.sock, ssl.SSLSocket):
            cipher = self.sock.cipher()
            facts.append(f"TLS {self.sock.version()} cipher {cipher[0] if cipher else '?'}")
            cert = self.sock.getpeercert()
            if cert:
                subject = ", ".join("=".join(pair) for rdn in cert.get("subject", ()) for pair in rdn)
                facts.append(f"certificate subject {subject}, verified")
            else:
                facts.append("certificate not verified (verification turned off)")
        self.transcript.event("; ".join(facts))


class TranscriptSMTP(TranscriptClient, BoundedReplies, smtplib.SMTP):
    """smtplib.SMTP that reports to a transcript."""

    def __init__(self, *args: t.Any, transcript: Transcript | None = None, **kwargs: t.Any) -> None:
        self.transcript = transcript
        super().__init__(*args, **kwargs)


class TranscriptSMTP_SSL(TranscriptClient, BoundedReplies, smtplib.SMTP_SSL):
    """smtplib.SMTP_SSL (implicit TLS) that reports to a transcript."""

    def __init__(self, *args: t.Any, transcript: Transcript | None = None, **kwargs: t.Any) -> None:
        self.transcript = transcript
        super().__init__(*args, **kwargs)


def _commands_to(transcript: Transcript, text: str) -> None:
    """Log the commands of one write, one line a command: pipelined commands go in one write."""
    for command in text.split("\r\n"):
        transcript.client(command)


@functools.lru_cache(maxsize=16)
def tls_context(verify: bool, ca_file: str | None) -> ssl.SSLContext:
    """The client TLS context: verified against ``ca_file`` or the system store."""
    if verify:
        return ssl.create_default_context(cafile=ca_file)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def failure(stage: str, err: BaseException, account: AccountInfo | None) -> DeliveryError:
    """Turn an smtplib or socket error into a :class:`DeliveryError` that names the stage.

    No network I/O: the fix-it hint (``hints.py``, which may probe the
    server) is worked out from ``error.cause`` where the error is shown.
    """
    error = _failure(stage, err, account)
    error.cause = err
    return error


def _failure(stage: str, err: BaseException, account: AccountInfo | None) -> DeliveryError:
    where: dict[str, t.Any] = {"account_id": account.id if account else None}
    if account is not None:
        where.update(host=account.host, port=account.port)
    if isinstance(err, smtplib.SMTPRecipientsRefused):
        refused = {r: (c, m.decode("utf-8", "replace")) for r, (c, m) in err.recipients.items()}
        code, reply = next(iter(refused.values()), (None, None))
        reason = Text("recipients-refused", N_("every recipient was refused"))
        return DeliveryError(stage, reason, code=code, reply=reply, refused=refused, **where)
    if isinstance(err, (smtplib.SMTPResponseException)):
        reply = (
            err.smtp_error.decode("utf-8", "replace")
            if isinstance(err.smtp_error, bytes)
            else str(err.smtp_error)
        )
        reason = {
            smtplib.SMTPAuthenticationError: Text("login-refused", N_("the server refused the login")),
            smtplib.SMTPSenderRefused: Text("sender-refused", N_("the server refused the sender")),
            smtplib.SMTPDataError: Text("data-refused", N_("the server refused the letter's data")),
            smtplib.SMTPConnectError: Text("connection-refused", N_("the server refused the connection")),
        }.get(type(err)) or Text("error-reply", N_("the server answered with an error"))
        return DeliveryError(stage, reason, code=err.smtp_code, reply=reply, **where)
    if isinstance(err, binascii.Error):
        reason = Text(
            "auth-challenge-not-base64",
            N_("the server's AUTH challenge is not base64 (%(error)s)"),
            error=str(err),
        )
        return DeliveryError(stage, reason, **where)
    if isinstance(err, ReplyTimeout):
        # A reply dripped too slowly is a timeout like a server that never answers: the same words, the same retries.
        return DeliveryError(stage, _timeout(), **where)
    if isinstance(err, ReplyTooLarge):
        reason = Text(
            "reply-too-large",
            N_("the server's reply went past %(lines)s lines or %(kib)s KiB"),
            lines=REPLY_MAX_LINES,
            kib=REPLY_MAX_BYTES // 1024,
        )
        return DeliveryError(stage, reason, **where)
    if isinstance(err, smtplib.SMTPServerDisconnected) and isinstance(err.__context__, TimeoutError):
        # smtplib reports a read that timed out as a disconnect; the person needs to know it was the timeout.
        return DeliveryError(stage, _timeout(), **where)
    if isinstance(err, smtplib.SMTPServerDisconnected):
        return DeliveryError(
            stage, Text("closed", N_("the server closed the connection (%(error)s)"), error=str(err)), **where
        )
    if isinstance(err, smtplib.SMTPNotSupportedError):
        return DeliveryError(stage, str(err), **where)
    if isinstance(err, ssl.SSLCertVerificationError):
        reason = Text(
            "certificate-refused", N_("certificate verification failed: %(error)s"), error=err.verify_message
        )
        return DeliveryError("tls", reason, **where)
    if isinstance(err, ssl.SSLError):
        return DeliveryError(
            "tls", Text("tls-failed", N_("TLS failed: %(error)s"), error=str(err.reason or err)), **where
        )
    if isinstance(err, (socket.timeout, TimeoutError)):
        return DeliveryError(stage, _timeout(), **where)
    if isinstance(err, OSError):
        return DeliveryError(stage, err.strerror or str(err), **where)
    return DeliveryError(stage, str(err), **where)


def _timeout() -> Text:
    return Text("timeout", N_("timeout"))


def open_connection(
    account: AccountInfo,
    password: str | None | t.Callable[[], str | None],
    *,
    timeout: float,
    ca_file: str | None = None,
    ehlo_name: str | None = None,
    transcript: Transcript | None = None,
    access_tokens: AccessTokens | None = None,
) -> smtplib.SMTP:
    """Connect to the account's server, secure it as configured and log in.

    ``starttls`` is required: a server that does not offer it is an error,
    never a silent plain-text login. An OAuth2 account logs in with AUTH
    XOAUTH2 and a token from ``access_tokens`` (default: the current app's).
    ``password`` may be a function that decrypts the stored one: it is
    called only to log in, and a key that no longer decrypts it fails the
    login stage like any other reason.

    Raises :class:`DeliveryError` and nothing else: whatever goes wrong at
    a stage (a reply that is not SMTP, a challenge that is not base64, a
    host name IDNA refuses, a secret no key decrypts) fails that stage, so
    that the caller tries the backups and records the failure.
    """
    context = tls_context(account.verify_tls, ca_file) if account.security != "none" else None
    stage = "connect"
    smtp: smtplib.SMTP | None = None
    try:
        if account.security == "ssl":
            smtp = TranscriptSMTP_SSL(
                account.host, account.port, ehlo_name, timeout=timeout, context=context, transcript=transcript
            )
        else:
            smtp = TranscriptSMTP(
                account.host, account.port, ehlo_name, timeout=timeout, transcript=transcript
            )
        smtp.pipelining = account.pipelining
        smtp.ehlo_or_helo_if_needed()
        if account.security == "starttls":
            stage = "tls"
            if not smtp.has_extn("starttls"):
                raise DeliveryError(
                    "tls",
                    Text(
                        "no-starttls", N_("the server does not offer STARTTLS, which this account requires")
                    ),
                    account_id=account.id,
                    host=account.host,
                    port=account.port,
                )
            smtp.starttls(context=context)
            smtp.ehlo()
        if account.auth == "login":
            stage = "login"
            secret = password() if callable(password) else password
            smtp.login(account.login, secret or "")
        elif account.auth == "oauth2":
            stage = "login"
            tokens = access_tokens or current_app.extensions["smtp_accounts"].access_tokens
            login_xoauth2(smtp, account, tokens, timeout=timeout, transcript=transcript)
        return smtp
    except DeliveryError:
        close_quietly(smtp)
        raise
    except Exception as err:  # noqa: BLE001 - every failure of a stage is that stage's DeliveryError
        close_quietly(smtp)
        raise failure(stage, err, account) from None


def close_quietly(smtp: smtplib.SMTP | None) -> None:
    """Say QUIT and close; a server that already hung up is not an error.

    A connection with an envelope written ahead is closed without QUIT:
    its DATA may have opened the data, where QUIT would be a line of it.
    """
    if smtp is None:
        return
    if isinstance(smtp, TranscriptClient) and smtp.envelope_ahead is not None:
        smtp.close()
        return
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()
