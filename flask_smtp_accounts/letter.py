"""A letter as the send path sees it, and what happened to it: the message log row in the making."""

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import formataddr

from .errors import DeliveryError
from .message_info import FAILED, QUEUED, SENDING, MessageInfo
from .models import AccountInfo, utcnow
from .routing import Choice

if t.TYPE_CHECKING:
    from .failover import RouteHeaders


@dataclass
class Letter:
    """What the dispatcher needs of a letter, whatever built it.

    ``render()`` returns the letter's bytes as the caller wrote them; a
    route's own From and Reply-To are written into them afterwards
    (``delivery.Dispatcher._render``), so a letter is rendered once.
    """

    sender: str | tuple[str, str]
    recipients: list[str]
    envelope_from: str | None
    message_id: str
    headers: t.Mapping[str, str]
    mail_options: list[str]
    rcpt_options: list[str]
    render: t.Callable[[], bytes]
    message: t.Any = None
    subject: str = ""
    #: The letter's own Reply-To, if it has one.
    reply_to: str | None = None
    #: ``None``: decide from the headers and :func:`bulk_sending`.
    bulk: bool | None = None
    #: The letter's row in the message log, for a retry or a resend.
    record: MessageInfo | None = None

    @property
    def sender_text(self) -> str:
        """The From as the message log shows it."""
        return self.sender if isinstance(self.sender, str) else formataddr(self.sender)


def describe(err: DeliveryError) -> str:
    """The error as the message log shows it: its message, and the SMTP command that failed."""
    return f"{err} (at {err.command})" if err.command else str(err)


@dataclass
class Outcome:
    """What happened to one letter; its status is ``sending`` until the attempt is settled."""

    letter: Letter
    choice: Choice
    bulk: bool
    pending: list[str]
    status: str = SENDING
    delivered: list[str] = field(default_factory=list)
    refused: dict[str, tuple[int, str]] = field(default_factory=dict)
    #: The account that carried the letter, or the last one tried.
    account: AccountInfo | None = None
    error: DeliveryError | None = None
    history: list[dict[str, t.Any]] = field(default_factory=list)
    sent_from: str | None = None
    reply_to_added: str | None = None
    size: int = 0
    #: The letter as written (the body a resend starts from).
    body: bytes | None = None
    #: The letter as the server that accepted it received it (``keep_bodies`` keeps these).
    data: bytes | None = None
    attempts: int = 0
    #: Whether any server was tried (a chain of accounts all cooling down tries none).
    tried: bool = False
    next_attempt_at: datetime | None = None
    record_id: int | None = None

    def failed(self, account: AccountInfo | None, err: DeliveryError) -> None:
        """One route failed; recipients it refused for good leave ``pending``."""
        self.account, self.error = account, err
        for rcpt, (code, reply) in err.refused.items():
            self.refused[rcpt] = (code, reply)
            if not 400 <= code < 500 and rcpt in self.pending:
                self.pending.remove(rcpt)
        self.history.append(
            {
                "at": utcnow().isoformat(timespec="seconds"),
                "account_id": account.id if account else None,
                "result": "failed",
                "stage": err.stage,
                "code": err.code,
                "reply": err.reply,
                "error": describe(err),
            }
        )

    def accepted(
        self,
        account: AccountInfo | None,
        headers: RouteHeaders,
        refused: dict[str, tuple[int, bytes]],
        data: bytes,
    ) -> None:
        """A server accepted the letter, for all pending recipients but ``refused``."""
        self.account, self.data, self.size = account, data, len(data)
        self.sent_from, self.reply_to_added = headers.from_header, headers.reply_to
        refused_now = {
            r: (c, m.decode("utf-8", "replace") if isinstance(m, bytes) else str(m))
            for r, (c, m) in refused.items()
        }
        for rcpt in self.pending:
            if rcpt not in refused_now:
                self.delivered.append(rcpt)
                self.refused.pop(rcpt, None)
        self.refused.update(refused_now)
        self.pending = [r for r, (c, _) in refused_now.items() if 400 <= c < 500]
        if self.history or refused_now or self.letter.record is not None:
            self.history.append(
                {
                    "at": utcnow().isoformat(timespec="seconds"),
                    "account_id": account.id if account else None,
                    "result": "sent",
                    "refused": {r: list(v) for r, v in refused_now.items()},
                }
            )

    @property
    def queued(self) -> bool:
        """Waiting in the retry queue: not handed to any server yet."""
        return self.status == QUEUED and not self.delivered

    @property
    def undelivered(self) -> bool:
        """Nothing was accepted and nothing waits in the queue: the caller must hear of it."""
        return self.status == FAILED and not self.delivered
