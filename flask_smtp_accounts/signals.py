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

letters_queued = signals.signal(
    "letters-queued",
    doc="""Letters were stored in the outbox, committed, and wait for a drainer.

    Sent once the rows are committed, so that a receiver can hand them to
    workers at once (``init_celery`` does): for each group an
    ``outbox(batch=N)`` block writes, as it is written; for the letters an
    ``outbox()`` block stored one by one, once when the outermost block
    ends; for a letter the ``outbox_all`` or ``outbox_bulk`` setting stores
    outside a block, at once. Each id is announced once.
    Keyword arguments: ``ids`` (the message log row ids, in the order stored).
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
    doc="""A letter found an account at one of its sending limits (``quotas.py``), so it was not sent through it.

    Sent once per connection block and account. Keyword arguments:
    ``account`` (the ``AccountInfo``), ``limit`` (the limit in words:
    ``"30 letters a minute"``) and ``error`` (the
    :class:`~flask_smtp_accounts.QuotaExceededError`, with ``retry_at``).
    """,
)


def account_failed(app: t.Any, account: t.Any, error: Exception, cooldown_s: int) -> None:
    """Announce what a connection-level failure of ``account`` means: a cool-down, a refused token.

    The send path calls this once per such failure, so that each signal's
    condition is stated here, once.
    """
    if cooldown_s > 0:
        account_cooled_down.send(app, account=account, error=error, cooldown_s=cooldown_s)
    if isinstance(error, OAuth2Error) and error.needs_action:
        oauth_token_refused.send(app, account=account, error=error)
