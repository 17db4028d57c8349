"""A letter's row in the message log as the API hands it out (:class:`MessageInfo`), and its statuses."""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from datetime import datetime

from .column_types import utcnow
from .labels import DEFAULT_ROUTE

#: A letter's statuses, as its message log row keeps them.
SENT = "sent"
SUPPRESSED = "suppressed"
FAILED = "failed"
QUEUED = "queued"
#: The row is written, the letter is being sent (or a retry holds it).
SENDING = "sending"
#: A drainer took the queued letter (its lease runs until ``claimed_until``); nothing of it was sent yet.
CLAIMED = "claimed"
#: A person cancelled the queued letter; it is never sent.
CANCELLED = "cancelled"

STATUSES = (SENT, SUPPRESSED, FAILED, QUEUED, CLAIMED, SENDING, CANCELLED)
#: Not a stored status: ``sending`` past its lease, left by a process that stopped. Outcome unknown.
INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class MessageInfo:
    """A read-only row of the message log."""

    id: int
    created_at: datetime
    updated_at: datetime
    status: str
    account_id: int | None
    chosen_account_id: int | None
    account_label: str
    rule: str
    bulk: bool
    sender: str
    envelope_from: str | None
    sent_from: str | None
    reply_to_added: str | None
    recipients: list[str]
    pending: list[str]
    refused: dict[str, tuple[int, str]]
    subject: str
    message_id: str
    size: int
    attempts: int
    next_attempt_at: datetime | None
    claimed_until: datetime | None
    error_stage: str | None
    error_code: int | None
    error_reply: str | None
    error: str | None
    history: list[dict[str, t.Any]]
    options: tuple[list[str], list[str]]
    body: bytes | None
    #: The row this letter is a copy of (``resend_copy``); ``None`` for a letter the site sent.
    resend_of: int | None = None

    @property
    def route(self) -> str:
        """``DEFAULT_ROUTE`` or the label of the account that carried (or last tried) the letter."""
        return self.account_label or DEFAULT_ROUTE

    @property
    def delivered_to(self) -> list[str]:
        """Recipients the server accepted."""
        return [r for r in self.recipients if r not in self.pending and r not in self.refused]

    @property
    def interrupted(self) -> bool:
        """Left ``sending`` past its lease by a process that stopped: a server may or may not have it."""
        return self.status == SENDING and (self.claimed_until is None or self.claimed_until < utcnow())

    @property
    def state(self) -> str:
        """The status as a person should read it: :data:`INTERRUPTED` for an interrupted send."""
        return INTERRUPTED if self.interrupted else self.status

    @property
    def resendable(self) -> bool:
        """Whether a person may resend it: undelivered or interrupted, body kept, not being sent."""
        return (
            (self.status in (FAILED, QUEUED) or self.interrupted)
            and self.body is not None
            and bool(self.pending)
        )


@dataclass(frozen=True)
class Page:
    """One page of the message log, newest first."""

    items: list[MessageInfo]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))
