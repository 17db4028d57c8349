"""The one module that knows Flask-Mail's internals.

Flask-Mail's ``Mail.connect()`` builds ``flask_mail.Connection``; every way
of sending (``mail.send``, ``mail.send_message``, ``conn.send``,
``msg.send(conn)``) goes through a connection's ``send``. :func:`install`
puts :class:`RoutedConnection` in its place. For an app without the
extension, or with routing disabled, it behaves exactly as Flask-Mail's.
With routing on, it is still Flask-Mail's connection: entering it opens
``conn.host`` as Flask-Mail does, and a letter no account matches goes
through Flask-Mail's own ``send`` on it (suppression and ``MAIL_MAX_EMAILS``
included); only its message log row is added around it.
"""

from __future__ import annotations

import functools
import inspect
import re
import smtplib
import time
import typing as t

import flask_mail
from flask import current_app

from .connection import close_quietly, failure
from .delivery import Dispatcher
from .errors import DeliveryError
from .letter import Letter
from .outbox_block import announce_stored, current_block
from .transaction import Interrupted, send_transaction

_FlaskMailConnection = flask_mail.Connection

#: An address that Flask-Mail's ``sanitize_address`` returns unchanged: an ASCII
#: dot-atom, ``@``, an ASCII domain; no display name.
_PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
)


def envelope_recipients(addresses: t.Iterable[str | tuple[str, str]]) -> list[str]:
    """Flask-Mail's ``sanitize_addresses``, with a shortcut for plain addresses.

    ``sanitize_address`` parses every address and encodes its display name
    (20 to 40 µs each); a newsletter's recipients are nearly all plain
    ``local@domain`` strings, for which it returns the string itself.
    """
    plain = _PLAIN_ADDRESS.fullmatch
    return [
        address if isinstance(address, str) and plain(address) else flask_mail.sanitize_address(address)
        for address in addresses
    ]


#: Where a message keeps the ``(name, address)`` tuple it was given as its sender.
_GIVEN_SENDER = "_smtp_accounts_sender"


def _remember_tuple_sender(init: t.Callable[..., None]) -> t.Callable[..., None]:
    """Wrap ``Message.__init__`` so that a tuple sender is kept beside the string Flask-Mail makes of it.

    Flask-Mail joins ``(name, address)`` into ``f"{name} <{address}>"``
    without quoting; a name such as ``Eve <billing@shop.example>`` then
    reads as another address. ``message.sender`` stays Flask-Mail's string
    (code reading it sees no change); routing and the From header use the
    tuple while the sender is still that string.
    """
    # Where ``sender`` sits among the positional arguments after ``self``.
    position = list(inspect.signature(init).parameters).index("sender") - 1

    @functools.wraps(init)
    def __init__(self: flask_mail.Message, *args: t.Any, **kwargs: t.Any) -> None:  # noqa: N807 - wraps __init__
        init(self, *args, **kwargs)
        given = kwargs.get("sender") if len(args) <= position else args[position]
        given = given or current_app.extensions["mail"].default_sender
        if isinstance(given, tuple) and len(given) == 2:
            self.__dict__[_GIVEN_SENDER] = (str(given[0] or ""), str(given[1] or ""))

    __init__.smtp_accounts_wrapped = init  # type: ignore[attr-defined]
    return __init__


def given_sender(message: flask_mail.Message) -> str | tuple[str, str]:
    """The sender as the site gave it: the tuple, unless ``message.sender`` was changed since."""
    given = message.__dict__.get(_GIVEN_SENDER)
    if given is not None and message.sender == f"{given[0]} <{given[1]}>":
        return t.cast("tuple[str, str]", given)
    return message.sender


def letter_from_message(
    message: flask_mail.Message,
    envelope_from: str | tuple[str, str] | None = None,
    send_to: t.Iterable[str | tuple[str, str]] | None = None,
) -> Letter:
    """Describe a Flask-Mail message for the dispatcher (``send_to``: its ``send_to``, if already built)."""
    given = given_sender(message)

    def render() -> bytes:
        sender = message.sender
        # Flask-Mail encodes a tuple's name as one phrase, quoted when it holds <, @ or the like.
        message.sender = given
        try:
            return message.as_bytes()
        finally:
            message.sender = sender

    return Letter(
        sender=given,
        recipients=envelope_recipients(message.send_to if send_to is None else send_to),
        envelope_from=flask_mail.sanitize_address(envelope_from) if envelope_from else None,
        message_id=message.msgId,
        headers=message.extra_headers or {},
        mail_options=message.mail_options,
        rcpt_options=message.rcpt_options,
        render=render,
        message=message,
        subject=message.subject or "",
        reply_to=flask_mail.sanitize_address(message.reply_to) if message.reply_to else None,
    )


def sender_of(message: flask_mail.Message) -> tuple[str | tuple[str, str], t.Mapping[str, str]]:
    """The sender (as the site gave it) and the extra headers of a Flask-Mail message."""
    return given_sender(message), message.extra_headers or {}


def _opening_failure(err: BaseException) -> DeliveryError:
    stage = "login" if isinstance(err, smtplib.SMTPAuthenticationError) else "connect"
    return failure(stage, err, None)


class _ConnectionRoute:
    """The default route inside ``mail.connect()``: Flask-Mail's own ``send`` on the block's ``conn.host``."""

    def __init__(self, conn: RoutedConnection) -> None:
        self._conn = conn
        self.suppress = bool(conn.mail.suppress)

    def send(
        self, letter: Letter, envelope_from: str, recipients: list[str], data: bytes
    ) -> dict[str, tuple[int, bytes]]:
        conn = self._conn
        try:
            conn.host  # noqa: B018 - opens Flask-Mail's connection on its first use
        except (smtplib.SMTPException, OSError) as err:
            raise _opening_failure(err) from None
        sent_before = conn.num_emails
        try:
            _FlaskMailConnection.send(conn, letter.message, letter.envelope_from)
        except (smtplib.SMTPException, OSError) as err:
            if conn.num_emails != sent_before:
                # Sent; then Flask-Mail's reconnection after MAIL_MAX_EMAILS letters failed: the next letter will say so.
                return {}
            raise failure("send", err, None) from None
        return {}

    def close(self) -> None:
        """``conn.host`` is closed by Flask-Mail's own ``__exit__``."""


class StoredRoute:
    """The default route for letters read back from the message log: Flask-Mail's server, settings and limits."""

    def __init__(self, mail: flask_mail.Mail) -> None:
        self._mail = mail
        self.suppress = bool(mail.suppress)
        self._smtp: smtplib.SMTP | None = None
        self._sent = 0

    def send(
        self, letter: Letter, envelope_from: str, recipients: list[str], data: bytes
    ) -> dict[str, tuple[int, bytes]]:
        if self._smtp is None:
            try:
                self._smtp = _FlaskMailConnection(self._mail).configure_host()
            except (smtplib.SMTPException, OSError) as err:
                raise _opening_failure(err) from None
        try:
            refused = send_transaction(
                self._smtp, envelope_from, recipients, data, letter.mail_options, letter.rcpt_options
            )
        except Interrupted as stop:
            if stop.connection_lost:
                self.close()
            raise stop.failure(None) from None
        self._sent += 1
        if self._sent == self._mail.max_emails:
            self.close()
        return refused

    def close(self) -> None:
        close_quietly(self._smtp)
        self._smtp, self._sent = None, 0


#: ``RoutedConnection.host`` before its first use: Flask-Mail's connection is opened when something needs it.
_UNOPENED: t.Any = object()


class RoutedConnection(_FlaskMailConnection):
    """A Flask-Mail connection that routes each letter through its account, and logs it.

    ``conn.host`` is Flask-Mail's own SMTP object, opened by Flask-Mail's
    ``configure_host`` as its ``__enter__`` does, but on first use rather
    than on entering the block: a block whose letters all go through
    accounts never waits on (or needs) the ``MAIL_SERVER``, which Flask-Mail
    connects to without a timeout. Reading, using or patching ``conn.host``
    works as with Flask-Mail.
    """

    _dispatcher: Dispatcher | None = None
    _host: t.Any = None
    #: The SMTP object Flask-Mail opened last: what ``del conn.host`` (the end of a patch) puts back.
    _opened: smtplib.SMTP | None = None

    @property
    def host(self) -> t.Any:
        if self._host is _UNOPENED:
            self.host = self.configure_host()
        return self._host

    @host.setter
    def host(self, value: t.Any) -> None:
        self._host = value
        if isinstance(value, smtplib.SMTP):
            self._opened = value

    @host.deleter
    def host(self) -> None:
        self._host = self._opened

    def __enter__(self) -> RoutedConnection:
        state = current_app.extensions.get("smtp_accounts")
        settings = state.directory.settings() if state is not None else None
        self._dispatcher = None
        if state is None or settings is None or not settings.enabled:
            return super().__enter__()
        # Flask-Mail's own __enter__, with the connection deferred to its first use.
        self._host = None if self.mail.suppress else _UNOPENED
        self.num_emails = 0
        self._dispatcher = state.dispatcher(
            settings, default=_ConnectionRoute(self), max_emails=self.mail.max_emails
        )
        return self

    def __exit__(self, exc_type: t.Any, exc_value: t.Any, tb: t.Any) -> None:
        dispatcher, self._dispatcher = self._dispatcher, None
        if dispatcher is None:
            return super().__exit__(exc_type, exc_value, tb)
        try:
            dispatcher.close()
            announce_stored(dispatcher.app, dispatcher.stored)
        finally:
            # As Flask-Mail's __exit__, but a server that already hung up does not turn delivered letters into an error.
            host, self._host = self._host, None
            if host is not _UNOPENED:
                close_quietly(host)
        return None

    def send(self, message: flask_mail.Message, envelope_from: str | tuple[str, str] | None = None) -> None:
        dispatcher = self._dispatcher
        if dispatcher is None:
            return super().send(message, envelope_from)
        # Flask-Mail's own checks, in its order, before any row is written or connection opened.
        send_to = message.send_to
        assert send_to, "No recipients have been added"
        assert message.sender, (
            "The message does not specify a sender and a default sender has not been configured"
        )
        if message.has_bad_headers():
            raise flask_mail.BadHeaderError
        if message.date is None:
            message.date = time.time()
        outcome = dispatcher.deliver(
            letter_from_message(message, envelope_from, send_to), outbox=current_block()
        )
        # Flask-Mail's own send announced a letter of the default route; one an account carried is announced here.
        if outcome.choice.account is not None and not outcome.queued:
            flask_mail.email_dispatched.send(dispatcher.app, message=message)
        return None


def stored_route() -> tuple[StoredRoute, int | None]:
    """Flask-Mail's own route and ``max_emails``, for sending outside a ``mail.connect()`` block: the retry queue."""
    mail = current_app.extensions["mail"]
    return StoredRoute(mail), mail.max_emails


def send_unrouted(message: flask_mail.Message) -> None:
    """Send with Flask-Mail's own settings, past the accounts (alert letters that must not depend on them)."""
    with _FlaskMailConnection(current_app.extensions["mail"]) as connection:
        connection.send(message)


def install() -> None:
    """Make Flask-Mail build routed connections and keep tuple senders whole (idempotent)."""
    flask_mail.Connection = RoutedConnection  # type: ignore[misc]
    init = flask_mail.Message.__init__
    if not hasattr(init, "smtp_accounts_wrapped"):
        flask_mail.Message.__init__ = _remember_tuple_sender(init)  # type: ignore[method-assign]


def message_type() -> type[flask_mail.Message]:
    return flask_mail.Message
