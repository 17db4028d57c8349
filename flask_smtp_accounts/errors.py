"""Every exception the extension raises on purpose, in one tree under :class:`SMTPAccountsError`.

Three branches group what a caller handles alike: :class:`FieldError` (a
value that cannot be saved, naming its field), :class:`NotFoundError` (no
such row or log; also a ``LookupError``) and :class:`DeliveryError` (a
server or token endpoint failed; also an ``smtplib.SMTPException``).
:func:`failure_kind` is the one answer to "does this failure move the
letter on?", used by the sending core and by :attr:`DeliveryError.temporary`.
The README's "Errors" section lists the tree; a test keeps it equal to this module.

The module is longer than most (about 430 lines) on purpose: every error
lives here, so that the whole tree, and what each error carries, reads in
one place.
"""

from __future__ import annotations

import smtplib
import typing as t
from datetime import datetime

from .check_result import CheckResult
from .texts import N_, Text


class SMTPAccountsError(Exception):
    """Base class of every error this extension raises on purpose."""


class FieldError(SMTPAccountsError, ValueError):
    """A field holds a value that cannot be saved; nothing has been written.

    ``field`` names the offending field so that forms and the command line
    can point at it; ``message`` says what is wrong with it.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class InvalidAccountError(FieldError):
    """An account field holds a value that cannot be saved."""


class UnknownFieldError(InvalidAccountError, TypeError):
    """An account was given a field it does not have (``add_account(colour="red")``).

    Also a ``TypeError``, what Python raises for an unexpected keyword
    argument, so that code catching that keeps working; ``field`` lists the
    unknown names.
    """

    def __init__(self, names: t.Iterable[str]) -> None:
        self.names = tuple(sorted(names))
        super().__init__(", ".join(self.names), "no such account field")


class InvalidSettingError(FieldError):
    """A setting was given a value outside its allowed range (or a name that is no setting)."""


class InvalidAlertError(FieldError):
    """An alert channel or event setting holds a value that cannot be saved; ``field`` names it."""


class AccountCheckFailed(SMTPAccountsError):
    """Saving was refused because the account failed its check; nothing was written.

    ``result`` is the :class:`~flask_smtp_accounts.check_result.CheckResult`: the
    stage, the server's reply and a hint.
    """

    def __init__(self, result: CheckResult) -> None:
        super().__init__(result.message)
        self.result = result


class SignInError(SMTPAccountsError):
    """A sign-in with an OAuth2 provider could not be used; nothing was stored."""


class NotFoundError(SMTPAccountsError, LookupError):
    """What was asked for does not exist (or the id given is no id).

    Also a ``LookupError``, so that ``except LookupError`` and ``except
    SMTPAccountsError`` both catch it.
    """


class AccountNotFoundError(NotFoundError):
    """No SMTP account has this id."""

    def __init__(self, account_id: object) -> None:
        super().__init__(f"There is no SMTP account with id {account_id}.")
        self.account_id = account_id


class MessageNotFoundError(NotFoundError):
    """The message log has no letter with this id."""

    def __init__(self, record_id: object) -> None:
        super().__init__(f"There is no message {record_id} in the message log.")
        self.record_id = record_id


class AlertChannelNotFoundError(NotFoundError):
    """No alert channel has this id."""

    def __init__(self, channel_id: object) -> None:
        super().__init__(f"There is no alert channel with id {channel_id}.")
        self.channel_id = channel_id


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


class LogNotFoundError(NotFoundError):
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
        """Whether the letter may still get through, later or through another account (``failure_kind``)."""
        return failure_kind(self) != PERMANENT

    def _describe(self) -> str:
        where = f" via account {self.account_id}" if self.account_id else ""
        server = f" ({self.host}:{self.port})" if self.host else ""
        answer = f": server replied {self.code} {self.reply}" if self.code else ""
        return f"{self.stage} failed{where}{server}: {self.reason}{answer}"


class QuotaExceededError(DeliveryError):
    """An account reached one of its sending limits, so the letter was not sent through it.

    ``stage`` is ``quota``; nothing of the letter reached the account's
    server. ``limit`` names the field (``limit_per_minute``...), ``allowed``
    its value, and ``retry_at`` (naive UTC) the first moment the letter
    fits every limit again. ``retry_at`` is ``None`` for a letter that can
    never fit (more envelope recipients than the daily recipient limit):
    then the failure is not temporary.
    """

    def __init__(
        self,
        account_id: int,
        limit: str,
        allowed: int,
        retry_at: datetime | None,
        *,
        host: str | None = None,
        port: int | None = None,
    ) -> None:
        self.limit = limit
        self.allowed = allowed
        self.retry_at = retry_at
        super().__init__("quota", LIMIT_WORDS.get(limit, limit), account_id=account_id, host=host, port=port)

    @property
    def temporary(self) -> bool:
        """Whether the letter fits later: a slot frees when the window slides on."""
        return self.retry_at is not None

    def _describe(self) -> str:
        reached = f"account {self.account_id} reached its limit of {self.allowed} {self.reason}"
        if self.retry_at is None:
            return f"{reached}: the letter has more recipients than that, so it never fits"
        return f"{reached}; next slot at {self.retry_at:%Y-%m-%d %H:%M:%S} UTC"


#: How a limit field reads after its number, in :class:`QuotaExceededError`'s message.
LIMIT_WORDS = {
    "limit_per_minute": "letters a minute",
    "limit_per_hour": "letters an hour",
    "limit_per_day": "letters a day",
    "recipient_limit_per_day": "recipients a day",
}


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


class LettersNotStoredError(MessageLogError):
    """Letters of an ``outbox(batch=N)`` block were not stored: their group's rows could not be written, none of them.

    ``message_ids`` lists every one of them, in the order they were sent:
    send those again. The block's letters written before them stay stored.
    The text names the first :data:`NAMED_IDS` (a group holds up to 10,000).
    """

    NAMED_IDS = 10

    def __init__(self, message_ids: t.Sequence[str], reason: str) -> None:
        ids = list(message_ids)
        named = ", ".join(ids[: self.NAMED_IDS])
        more = (
            f" and {len(ids) - self.NAMED_IDS} more (all in message_ids)" if len(ids) > self.NAMED_IDS else ""
        )
        SMTPAccountsError.__init__(
            self,
            f"{len(ids)} letter(s) of the outbox block were not stored, none of their group:"
            f" {named}{more}; send them again ({reason})",
        )
        self.message_ids = tuple(ids)
        self.message_id = ids[0] if ids else ""
        self.reason = reason
        self.delivered = False
        self.record_id: int | None = None


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
        endpoint_down: bool = False,
    ) -> None:
        self.error = error
        self.description = description
        self.status = status
        #: The endpoint could not answer (unreachable, timed out, a server error): asking later may work.
        self.endpoint_down = endpoint_down
        super().__init__("token", reason, account_id=account_id, host=host, reply=reply)
        self.hint = fix

    @property
    def needs_action(self) -> bool:
        """Whether a person must act before the account sends again (sign in again, a new secret, consent).

        The letter itself still moves on to a backup and back to the queue
        (:attr:`temporary`, like any failure to open a connection): other
        accounts are not affected, and a person may fix this one meanwhile.
        """
        return not self.endpoint_down

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


#: Stages of opening a connection (``token``: an OAuth2 account's access token); a failure there says the
#: account, not the letter, is at fault.
CONNECTION_STAGES = frozenset({"connect", "tls", "token", "login", "cool-down"})

CONNECTION = "connection"
TEMPORARY = "temporary"
PERMANENT = "permanent"


def failure_kind(err: DeliveryError) -> str:
    """``connection``, ``temporary`` or ``permanent``: what a failure says about trying elsewhere or later.

    ``connection``: the account could not carry anything (cool it down, try
    the next); ``temporary``: a 4xx reply about this letter (try the next);
    ``permanent``: a 5xx refusal of the letter (stop: another server would
    refuse it too). An account at one of its sending limits (stage ``quota``)
    is ``temporary``: the letter is fine, the account is full for now. A
    failure while opening the connection is the account's whatever its code: a login refused with 535, or a login that failed
    with no reply at all (the server hung up, offers no XOAUTH2, a secret
    no key decrypts), moves the letter on. So does any failure without a
    server code (a timeout, a dropped connection) and a 421 (the server is
    closing the connection).
    """
    if err.stage == "quota":  # the account is full for now; the letter itself is fine
        return TEMPORARY
    if err.stage in CONNECTION_STAGES or err.code is None or err.code == 421:
        return CONNECTION
    if 400 <= err.code < 500:
        return TEMPORARY
    return PERMANENT


class CeleryNotConfiguredError(SMTPAccountsError, RuntimeError):
    """The Celery app given to ``init_celery`` names no broker; nothing was wired.

    Letters handed to such an app would reach no worker; the message says
    which setting gives it one.
    """
