"""The exceptions the extension raises, one base class and a few specific ones."""

from __future__ import annotations

import smtplib

from .texts import N_, Text


class SMTPAccountsError(Exception):
    """Base class of every error this extension raises on purpose."""


class InvalidAccountError(SMTPAccountsError, ValueError):
    """An account field holds a value that cannot be saved.

    ``field`` names the offending field so that forms and the command line
    can point at it; nothing has been written when this is raised.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class AccountInUseError(SMTPAccountsError):
    """An account was not deleted because other accounts list it as their backup.

    Deleting it would leave those accounts naming an id that no longer
    exists; ``used_by`` holds their ids, so that a person can change
    their backups first.
    """

    def __init__(self, account_id: int, used_by: tuple[int, ...]) -> None:
        super().__init__(
            Text(
                "backup-in-use",
                N_("account %(id)s is a backup of account %(users)s; remove it from their backups first"),
                id=account_id,
                users=", ".join(str(i) for i in used_by),
            )
        )
        self.account_id = account_id
        self.used_by = used_by


class InvalidAddressError(SMTPAccountsError, ValueError):
    """A sender given to the routing preview holds no email address (``"not an address"``)."""


class InvalidSettingError(SMTPAccountsError, ValueError):
    """A setting was given a value outside its allowed range."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class InvalidArgumentError(SMTPAccountsError, ValueError):
    """An argument of an API call is outside what it accepts (``deliver_queued(connections=0)``); nothing was done."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message


class LogAddressError(SMTPAccountsError, ValueError):
    """A log was addressed by something other than an account id and a kind.

    Logs are named by ``(account_id, kind)`` only, never by a path, so that
    nothing a person types can reach a file outside the log folder.
    """


class LogNotFoundError(SMTPAccountsError, LookupError):
    """The account has no log of this kind (never written, or deleted)."""

    def __init__(self, account_id: int, kind: str) -> None:
        super().__init__(f"There is no {kind} log for account {account_id}.")
        self.account_id = account_id
        self.kind = kind


class EncryptionError(SMTPAccountsError):
    """A stored secret cannot be decrypted with any configured key."""


class DeliveryError(SMTPAccountsError, smtplib.SMTPException):
    """Talking to an SMTP server failed.

    ``stage`` is one of ``connect``, ``tls``, ``login``, ``send`` (MAIL,
    RCPT or DATA), ``test letter``, ``token`` (an OAuth2 access token could
    not be had, see :class:`OAuth2Error`) or ``cool-down`` (the account was
    skipped after a recent connection failure); ``code`` and ``reply`` are
    the server's answer when there was one. The message never holds a
    password or an AUTH payload.

    It is also an ``smtplib.SMTPException``, so that code written for plain
    Flask-Mail (``except smtplib.SMTPException``) keeps catching it. When
    ``mail.send`` raises it, ``record_id`` is the letter's row in the
    message log, where its body waits for a resend.
    """

    #: The letter's row in the message log, when the error came from sending one.
    record_id: int | None = None
    #: The SMTP command that failed (``MAIL``, ``RCPT``, ``DATA``) when ``stage`` is ``send``.
    command: str | None = None
    #: A fix-it hint for a classic mistake (SSL on port 587, a Gmail password...), see ``hints.py``;
    #: computed where errors are shown (a check, the admin, the command line), never while sending.
    hint: str | None = None
    #: The smtplib or socket exception under it, from which a hint can be worked out.
    cause: BaseException | None = None

    def __init__(
        self,
        stage: str,
        reason: str,
        *,
        account_id: int | None = None,
        host: str | None = None,
        port: int | None = None,
        code: int | None = None,
        reply: str | None = None,
        refused: dict[str, tuple[int, str]] | None = None,
    ) -> None:
        self.stage = stage
        self.reason = reason
        self.account_id = account_id
        self.host = host
        self.port = port
        self.code = code
        self.reply = reply
        self.refused = refused or {}
        super().__init__(self._describe())

    @property
    def temporary(self) -> bool:
        """Whether trying again later (or elsewhere) may succeed."""
        if self.code is None:
            return self.stage in {"connect", "tls", "cool-down"} or self.reason == "timeout"
        return 400 <= self.code < 500

    def _describe(self) -> str:
        where = f" via account {self.account_id}" if self.account_id else ""
        server = f" ({self.host}:{self.port})" if self.host else ""
        answer = f": server replied {self.code} {self.reply}" if self.code else ""
        return f"{self.stage} failed{where}{server}: {self.reason}{answer}"


class ConnectionsBusyError(DeliveryError):
    """Every connection the account allows (``max_connections``) is open elsewhere: try again later or elsewhere.

    A temporary failure at ``connect`` that says nothing bad about the
    account, so it never cools the account down.
    """

    def __init__(self, account_id: int, max_connections: int, *, host: str, port: int) -> None:
        super().__init__(
            "connect",
            f"all {max_connections} connections of the account are busy",
            account_id=account_id,
            host=host,
            port=port,
        )
        self.max_connections = max_connections


class MessageLogError(SMTPAccountsError):
    """The message log could not be written, so the letter was not sent (or not recorded as sent).

    Every letter has its row before it goes to a server; when that row
    cannot be written (the database is down, locked or read-only), nothing
    is sent and this is raised. ``delivered`` is true in the one case where
    the server had accepted the letter and only the row's final update
    failed: the row then stays ``sending`` and shows as interrupted.
    """

    def __init__(
        self, message_id: str, reason: str, *, delivered: bool = False, record_id: int | None = None
    ) -> None:
        if delivered:
            what = f"letter {message_id} was accepted by the server, but its message log row {record_id} could not be updated"
        else:
            what = f"letter {message_id} was not sent: its message log row could not be written"
        super().__init__(f"{what} ({reason})")
        self.message_id = message_id
        self.reason = reason
        self.delivered = delivered
        self.record_id = record_id


class ResendError(SMTPAccountsError):
    """A letter of the message log cannot be resent (or retried) as asked.

    Raised, for instance, for a letter the server already accepted: sending
    it again would deliver it twice.
    """

    def __init__(self, record_id: int, reason: str) -> None:
        super().__init__(f"message {record_id}: {reason}")
        self.record_id = record_id
        self.reason = reason


class OAuth2Error(DeliveryError):
    """The token endpoint gave no access token for an OAuth2 account.

    ``stage`` is ``token``; ``host`` is the token endpoint's; ``error`` and
    ``description`` are its OAuth2 error answer (``invalid_grant``...) and
    ``hint`` says what to do about it (sign in again, renew the client
    secret, grant consent). Never holds a secret or a token.
    """

    def __init__(
        self,
        reason: str,
        *,
        account_id: int | None = None,
        host: str | None = None,
        error: str | None = None,
        description: str | None = None,
        status: int | None = None,
        reply: str | None = None,
        fix: str | None = None,
        temporary: bool = False,
    ) -> None:
        self.error = error
        self.description = description
        self.status = status
        self._temporary = temporary
        super().__init__("token", reason, account_id=account_id, host=host, reply=reply)
        self.hint = fix

    @property
    def temporary(self) -> bool:
        """Whether asking again later may succeed (unreachable endpoint, server error)."""
        return self._temporary

    def _describe(self) -> str:
        where = f" via account {self.account_id}" if self.account_id else ""
        endpoint = f" ({self.host})" if self.host else ""
        answer = f": the token endpoint replied {self.reply}" if self.reply else ""
        return f"OAuth2 token request failed{where}{endpoint}: {self.reason}{answer}"


class AlertDeliveryError(SMTPAccountsError):
    """An alert channel could not be reached.

    ``channel_id`` names the channel; the message names a webhook by its
    host only, since its URL is a secret.
    """

    def __init__(self, channel_id: int, message: str) -> None:
        super().__init__(f"alert channel {channel_id}: {message}")
        self.channel_id = channel_id
        self.message = message


class InvalidAlertError(SMTPAccountsError, ValueError):
    """An alert channel or event setting holds a value that cannot be saved; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
