"""Signals sent by the extension, on its own namespace.

Each is sent with the app as sender and keyword arguments as payload, like
Flask-Mail's ``email_dispatched``.
"""

from __future__ import annotations

from blinker import Namespace

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
    doc="""No route delivered a letter and it waits in the retry queue (``queue_undelivered`` on).

    Keyword arguments: ``message`` (the Flask-Mail message; ``None`` when a
    retry re-queues a stored letter), ``account`` (the last one tried, or
    ``None``), ``error`` (the :class:`~flask_smtp_accounts.DeliveryError`)
    and ``record_id`` (its row in the message log).
    """,
)
