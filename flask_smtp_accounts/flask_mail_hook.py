"""The one module that knows Flask-Mail's internals.

Flask-Mail's ``Mail.connect()`` builds ``flask_mail.Connection``; every way
of sending (``mail.send``, ``mail.send_message``, ``conn.send``,
``msg.send(conn)``) goes through a connection's ``send``. :func:`install`
puts :class:`RoutedConnection` in its place. For an app without the
extension, or with routing disabled, it behaves exactly as Flask-Mail's.
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

from .delivery import Dispatcher, Letter

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

    def render(from_header: str | None) -> bytes:
        sender = message.sender
        # Flask-Mail encodes a tuple's name as one phrase, quoted when it holds <, @ or the like.
        message.sender = given if from_header is None else from_header
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


class RoutedConnection(_FlaskMailConnection):
    """A Flask-Mail connection that routes each letter through its account."""

    _dispatcher: Dispatcher | None = None

    def __enter__(self) -> RoutedConnection:
        state = current_app.extensions.get("smtp_accounts")
        self._dispatcher = None
        if state is not None:
            self._dispatcher = state.dispatcher(
                suppress=bool(self.mail.suppress),
                max_emails=self.mail.max_emails,
                open_default=self.configure_host,
            )
        if self._dispatcher is None:
            return super().__enter__()
        self.host = None
        self.num_emails = 0
        return self

    def __exit__(self, exc_type: t.Any, exc_value: t.Any, tb: t.Any) -> None:
        dispatcher, self._dispatcher = self._dispatcher, None
        if dispatcher is None:
            return super().__exit__(exc_type, exc_value, tb)
        dispatcher.close()
        return None

    def send(self, message: flask_mail.Message, envelope_from: str | tuple[str, str] | None = None) -> None:
        dispatcher = self._dispatcher
        if dispatcher is None:
            return super().send(message, envelope_from)
        # Flask-Mail's own checks, in its order, before any connection opens.
        send_to = message.send_to
        assert send_to, "No recipients have been added"
        assert message.sender, (
            "The message does not specify a sender and a default sender has not been configured"
        )
        if message.has_bad_headers():
            raise flask_mail.BadHeaderError
        if message.date is None:
            message.date = time.time()
        outcome = dispatcher.deliver(letter_from_message(message, envelope_from, send_to))
        if not outcome.queued:  # a queued letter was not dispatched; message_queued says so
            flask_mail.email_dispatched.send(dispatcher.app, message=message)
        self.num_emails += 1
        return None


def default_route() -> tuple[bool, int | None, t.Callable[[], smtplib.SMTP]]:
    """Flask-Mail's ``suppress`` flag, ``max_emails`` and opener of its own connection.

    For sending outside a ``mail.connect()`` block: the retry queue.
    """
    mail = current_app.extensions["mail"]
    return bool(mail.suppress), mail.max_emails, _FlaskMailConnection(mail).configure_host


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
