"""How a letter's outcome becomes a row of the message log, and a row a :class:`MessageInfo`: the one builder."""

from __future__ import annotations

import json
import typing as t
from datetime import datetime, timedelta

from .letter import Outcome, describe
from .message_info import FAILED, QUEUED, SENDING, MessageInfo

#: How long a row may stay ``sending`` before it counts as interrupted. Far longer than a send
#: can take (each server reply has a deadline of ``timeout_s``, at most 300 s, and a chain has a few
#: accounts), short enough that a person sees an interrupted letter the same hour.
LEASE = timedelta(minutes=15)

#: History entries kept per letter (the latest ones).
MAX_HISTORY = 20

_JSON_COLUMNS = {"recipients": list, "pending": list, "refused": dict, "history": list, "options": list}


def info_of(row: t.Any) -> MessageInfo:
    values = dict(row)
    for name in _JSON_COLUMNS:
        values[name] = json.loads(values[name] or ("{}" if name == "refused" else "[]"))
    values["refused"] = {k: (v[0], v[1]) for k, v in values["refused"].items()}
    options = values["options"] or [[], []]
    values["options"] = (list(options[0]), list(options[1]))
    return MessageInfo(**values)


#: Built once: ``json.dumps`` with arguments of its own builds a new encoder at every call.
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def dumps(value: t.Any) -> str:
    """A JSON column's text: compact, non-ASCII kept as it is."""
    return _JSON.encode(value)


def row_of(outcome: Outcome, *, keep_bodies: bool, now: datetime) -> dict[str, t.Any]:
    """The message log row of ``outcome``: the values to insert (a new letter) or to update (its row).

    The body stays while the letter is undelivered (``sending``, ``failed``,
    ``queued``): a resend needs it. A letter read back from its row (a
    retry, a resend) keeps the refusals and history of its earlier tries.
    The columns that describe the letter itself (its sender, recipients,
    subject...) are built only for a row not written yet (``outcome.record_id``
    unset): an attempt never changes them, so an update leaves them out.
    """
    letter, choice, account, status = outcome.letter, outcome.choice, outcome.account, outcome.status
    record = letter.record
    undelivered = status in (SENDING, FAILED, QUEUED)
    error = outcome.error if status in (FAILED, QUEUED) else None
    if undelivered:
        body = record.body if record is not None else outcome.body
    else:
        body = (outcome.data or outcome.body) if keep_bodies else None
    refused, history = outcome.refused, outcome.history
    if record is not None:
        refused = {**{r: v for r, v in record.refused.items() if r not in outcome.delivered}, **refused}
        history = record.history + history
    row: dict[str, t.Any] = {
        "updated_at": now,
        "status": status,
        "account_id": account.id if account else None,
        "chosen_account_id": choice.account.id if choice.account else None,
        "account_label": account.label if account else "",
        "rule": choice.rule,
        "sent_from": outcome.sent_from,
        "reply_to_added": outcome.reply_to_added,
        "pending": dumps(outcome.pending),
        "refused": dumps({r: list(v) for r, v in refused.items()}),
        "attempts": outcome.attempts,
        "next_attempt_at": outcome.next_attempt_at,
        "claimed_until": now + LEASE if status == SENDING else None,
        "error_stage": error.stage if error else None,
        "error_code": error.code if error else None,
        "error_reply": error.reply if error else None,
        "error": describe(error) if error else None,
        "history": dumps(history[-MAX_HISTORY:]),
        "body": body,
    }
    if outcome.size:
        row["size"] = outcome.size
    if record is None and outcome.record_id is None:
        row.update(
            created_at=now,
            bulk=outcome.bulk,
            sender=letter.sender_text,
            envelope_from=letter.envelope_from,
            recipients=dumps(letter.recipients),
            subject=letter.subject[:998],
            message_id=letter.message_id or "",
            size=outcome.size or (len(outcome.body) if outcome.body else 0),
            options=dumps([letter.mail_options, letter.rcpt_options]),
        )
    return row


def changes(written: t.Mapping[str, t.Any], row: dict[str, t.Any]) -> dict[str, t.Any]:
    """The values of ``row`` that differ from the ``written`` one: what the update of a row needs to set.

    ``created_at`` stays the time the row was written ahead.
    """
    return {
        name: value
        for name, value in row.items()
        if name != "created_at" and (name not in written or written[name] != value)
    }
