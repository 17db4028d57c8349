"""What a check of an account found: the stage that failed, the server's reply, a hint.

A module of its own, importing nothing of the package, because both the
check (``check.py``) and the error a refused save raises
(:class:`~flask_smtp_accounts.errors.AccountCheckFailed`) carry it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CheckResult:
    """The outcome of a check or of a test letter."""

    ok: bool
    #: ``connect``, ``tls``, ``token`` (OAuth2), ``login`` or ``test letter`` when not ok.
    stage: str | None
    code: int | None
    reply: str | None
    elapsed_s: float
    #: A sentence a person can act on.
    message: str
    #: Message-ID of the test letter, when one was sent.
    message_id: str | None = None
    #: How to fix a classic mistake, when the failure is one (``hints.py``).
    hint: str | None = None
    #: What went wrong, without the stage and the server (``DeliveryError.reason``, often a ``texts.Text``).
    reason: str | None = None

    def __bool__(self) -> bool:
        return self.ok
