"""Sending a letter of the message log again as a new letter: a delivered one, or to another address.

The in-place resend (``retry.py``) finishes an undelivered letter and
refuses a delivered one, so that nobody gets it twice by accident. A copy
is the deliberate second sending an operator asks for ("the customer
never got the receipt", "send it to the accountant too"): it needs the
letter's body (kept for delivered letters only with the ``keep_bodies``
setting), gets a new row that names the row it copies (``resend_of``) and
a new Message-ID, so that the recipient's mailbox does not drop it as a
duplicate. The row is written, claimed, before anything is sent, and the
sending goes through the same routing and failover as any letter.
"""

from __future__ import annotations

import typing as t
from email.utils import make_msgid

from .addresses import normalize_email
from .errors import ResendError
from .headers import set_header
from .letter import SENDING
from .message_log import LEASE, MessageInfo, dumps
from .models import utcnow
from .retry import _body_not_kept, dispatcher, stored_letter
from .texts import N_, Text

if t.TYPE_CHECKING:
    from .state import AppState

#: The columns a copy takes over from the letter it copies, as they are.
_COPIED = (
    "chosen_account_id",
    "account_id",
    "account_label",
    "rule",
    "bulk",
    "sender",
    "envelope_from",
    "subject",
    "size",
)


def resend_copy(state: AppState, record_id: int, recipients: t.Sequence[str] | None = None) -> MessageInfo:
    """Send letter ``record_id`` again as a new letter to ``recipients`` (default: its own); return the new row.

    Raises ``LookupError`` for no such letter, :class:`InvalidAccountError`
    (field ``recipient``) for an address that is not one,
    :class:`ResendError` for a letter whose body was not kept or that is
    being sent right now, and :class:`DeliveryError` when no route
    delivered the copy (its row then says why).
    """
    log = state.message_log
    record = log.get(record_id)
    if record.body is None:
        raise ResendError(record_id, _body_not_kept())
    if record.status == SENDING:
        raise ResendError(
            record_id, Text("copy-while-sending", N_("it is being sent right now; copy it when that is done"))
        )
    to = (
        [normalize_email("recipient", address) for address in recipients] if recipients else record.recipients
    )
    message_id = make_msgid(domain=_domain_of(record.message_id))
    now = utcnow()
    copy_id = log.insert(
        {
            **{name: getattr(record, name) for name in _COPIED},
            "created_at": now,
            "updated_at": now,
            "status": SENDING,
            "claimed_until": now + LEASE,
            "recipients": dumps(to),
            "pending": dumps(to),
            "message_id": message_id,
            "options": dumps(list(record.options)),
            "body": set_header(record.body, "Message-ID", message_id),
            "resend_of": record.id,
        }
    )
    copy = log.get(copy_id)
    sender = dispatcher(state)
    try:
        outcome = sender.redeliver(copy, stored_letter(copy), requeue=False)
    finally:
        sender.close()
    if outcome.undelivered:
        assert outcome.error is not None
        outcome.error.record_id = copy_id
        raise outcome.error
    return log.get(copy_id)


def _domain_of(message_id: str) -> str | None:
    """The right-hand side of a Message-ID, so the copy's id looks like the site's own."""
    right = message_id.strip().strip("<>").rpartition("@")[2]
    return right or None
