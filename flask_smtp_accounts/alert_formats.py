"""The JSON body of a webhook alert, one small formatter per kind of receiver.

``json`` is the generic payload (every field, for a receiver of one's own);
``slack``, ``teams`` and ``discord`` are what their incoming webhooks accept
(Teams: a Workflows webhook's Adaptive Card message).
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class AlertNote:
    """What an alert says, whichever channel carries it."""

    event: str
    title: str
    text: str
    account_id: int | None
    occurred_at: datetime
    #: Further alerts of the same event and account counted into this one, since ``since``.
    more: int = 0
    since: datetime | None = None

    @property
    def line(self) -> str:
        """The whole alert as one line: text, and the count of those held back."""
        if not self.more:
            return self.text
        since = f" since {self.since:%Y-%m-%d %H:%M} UTC" if self.since else ""
        return f"{self.text} (and {self.more} more{since})"


def generic(note: AlertNote) -> dict[str, t.Any]:
    return {
        "event": note.event,
        "title": note.title,
        "text": note.line,
        "account_id": note.account_id,
        "occurred_at": note.occurred_at.isoformat() + "Z",
        "more": note.more,
        "since": note.since.isoformat() + "Z" if note.since else None,
    }


def slack(note: AlertNote) -> dict[str, t.Any]:
    return {"text": f"*{note.title}*\n{note.line}"}


def teams(note: AlertNote) -> dict[str, t.Any]:
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": note.title, "weight": "Bolder", "size": "Medium", "wrap": True},
            {"type": "TextBlock", "text": note.line, "wrap": True},
        ],
    }
    return {
        "type": "message",
        "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}],
    }


def discord(note: AlertNote) -> dict[str, t.Any]:
    return {"content": f"**{note.title}**\n{note.line}"[:2000]}


FORMATTERS: dict[str, t.Callable[[AlertNote], dict[str, t.Any]]] = {
    "json": generic,
    "slack": slack,
    "teams": teams,
    "discord": discord,
}
FORMAT_CHOICES = tuple(FORMATTERS)
