"""Signals sent by the extension, on its own namespace.

Each is sent with the app as sender and keyword arguments as payload, like
Flask-Mail's ``email_dispatched``.
"""

from __future__ import annotations

import typing as t

from blinker import Namespace

from .errors import OAuth2Error

signals = Namespace()

message_sent = signals.signal(
    "message-sent",
    doc="""A letter was handed to a server (or suppressed in testing).

    Keyword arguments: ``message`` (the Flask-Mail message; ``None`` for a
    letter sent again from the message log), ``message_id`` (its
    Message-ID header, also for a letter sent again: the key that ties a
    resend to the first try), ``account`` (the
    :class:`~flask_smtp_accounts.AccountInfo` that carried it, a backup
    when the chosen one failed, or ``None`` when Flask-Mail's own settings
    carried it), ``rule`` (why that route) and ``suppressed``.
    """,
)

send_failed = signals.signal(
    "send-failed",
    doc="""No route delivered a letter (to some or all of its recipients); it is failed in the message log.

    Keyword arguments: ``message`` (``None`` for a letter sent again from
    the message log), ``message_id`` (its Message-ID header, as for
    ``message_sent``), ``account`` (the last one tried, or ``None``) and
    ``error`` (the last :class:`~flask_smtp_accounts.DeliveryError`).
    """,
)

account_checked = signals.signal(
    "account-checked",
    doc="""An account was checked against its server.

    Keyword arguments: ``account`` (an ``AccountInfo``; id ``0`` for an
    account not yet saved) and ``result`` (a ``CheckResult``).
    """,
)

message_queued = signals.signal(
    "message-queued",
    doc="""A letter waits in the queue: no route delivered it (``queue_undelivered`` on), or it went to the outbox.

    Keyword arguments: ``message`` (the Flask-Mail message; ``None`` when a
    retry re-queues a stored letter), ``account`` (the last one tried, or
    the one chosen for an outbox letter, or ``None``), ``error`` (the
    :class:`~flask_smtp_accounts.DeliveryError`; ``None`` for an outbox
    letter, which was not tried yet) and ``record_id`` (its row in the
    message log).
    """,
)

account_cooled_down = signals.signal(
    "account-cooled-down",
    doc="""An account failed at the connection level and routing skips it for a while.

    Keyword arguments: ``account`` (the ``AccountInfo``), ``error`` (the
    :class:`~flask_smtp_accounts.DeliveryError`) and ``cooldown_s`` (how
    long it is skipped, in seconds).
    """,
)

oauth_token_refused = signals.signal(
    "oauth-token-refused",
    doc="""The token endpoint refused an OAuth2 account's grant while a letter was being sent.

    Asking again will not help: someone must sign in again or fix the
    account (its ``error.hint`` says how). Keyword arguments: ``account``
    and ``error`` (the :class:`~flask_smtp_accounts.OAuth2Error`).
    """,
)

quota_reached = signals.signal(
    "quota-reached",
    doc="""An account reached its sending limit (sent by the quotas of issue 13; declared for the alerts).

    Keyword arguments: ``account`` and ``limit`` (a description of the limit).
    """,
)


def account_failed(app: t.Any, account: t.Any, error: Exception, cooldown_s: int) -> None:
    """Announce what a connection-level failure of ``account`` means: a cool-down, a refused token.

    The send path calls this once per such failure, so that each signal's
    condition is stated here, once.
    """
    if cooldown_s > 0:
        account_cooled_down.send(app, account=account, error=error, cooldown_s=cooldown_s)
    if isinstance(error, OAuth2Error) and not error.temporary:
        oauth_token_refused.send(app, account=account, error=error)
