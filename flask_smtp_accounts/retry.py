"""The retry policy: whether a letter no route delivered waits in the queue, and for how long.

With the ``queue_undelivered`` setting on, a letter no route delivered
stays in the message log as ``queued``, with its body, until a drainer
(``redelivery.py``) sends it again. A try that fails temporarily waits
``retry_backoff_s × 2^(tries-1)`` seconds (at most a day); after
``max_attempts`` tries the letter is marked failed (:func:`settle`). A try
counts only when a server was tried: a chain whose accounts all cool down
tries none.
"""

from __future__ import annotations

from datetime import timedelta

from .errors import PERMANENT, QuotaExceededError, failure_kind
from .letter import Outcome
from .message_info import FAILED, QUEUED, SENT
from .models import utcnow
from .settings import SettingsInfo

#: The longest wait between two tries of a queued letter.
MAX_BACKOFF_S = 86_400


def backoff(attempts: int, backoff_s: int) -> timedelta:
    """How long a letter waits after its ``attempts``-th try: ``backoff_s × 2^(attempts-1)``, at most a day."""
    return timedelta(seconds=min(backoff_s * 2 ** (max(attempts, 1) - 1), MAX_BACKOFF_S))


def settle(outcome: Outcome, *, queue: bool, settings: SettingsInfo, prior_attempts: int) -> None:
    """Decide a letter's status once every route had its turn: sent, failed, or queued for later."""
    outcome.attempts = prior_attempts + (1 if outcome.tried else 0)
    if not outcome.pending:
        if outcome.delivered:
            outcome.status = SENT
            return
        # Every recipient refused for good: a person may fix them and resend.
        outcome.pending = [r for r in outcome.letter.recipients if r in outcome.refused]
        outcome.status = FAILED
        return
    error = outcome.error
    permanent = error is not None and not error.refused and failure_kind(error) == PERMANENT
    if isinstance(error, QuotaExceededError):
        # The account at its limit sent nothing, and no try was counted: the letter waits for its slot
        # (none: it has more recipients than the account takes in a day).
        next_try = error.retry_at
    else:
        next_try = utcnow() + backoff(outcome.attempts, settings.retry_backoff_s)
    if not permanent and next_try is not None and queue and outcome.attempts < settings.max_attempts:
        outcome.status = QUEUED
        outcome.next_attempt_at = next_try
    else:
        outcome.status = FAILED
