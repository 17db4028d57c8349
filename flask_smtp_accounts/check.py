"""Checking an account against its server, and sending test letters.

A check connects, says EHLO, starts TLS, logs in, optionally sends a test
letter, and says QUIT. It reports the stage that failed and the server's
reply; it never carries a password in its result or its errors.
"""

from __future__ import annotations

import time
import typing as t
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid

from flask import current_app

from .check_result import (
    CheckResult as CheckResult,
)  # the outcome, in a module of its own: errors.py carries it
from .connection import close_quietly, failure, open_connection
from .errors import DeliveryError
from .hints import hint_for
from .models import AccountInfo
from .settings import SettingsInfo
from .signals import account_checked
from .texts import N_, Text

if t.TYPE_CHECKING:
    from .state import AppState


def test_letter(account: AccountInfo, recipient: str) -> EmailMessage:
    """The test letter an account sends to ``recipient``."""
    letter = EmailMessage()
    letter["Subject"] = "Test letter from flask-smtp-accounts"
    letter["From"] = formataddr((account.sender_name, account.sender_email))
    letter["To"] = recipient
    letter["Date"] = formatdate(localtime=True)
    letter["Message-ID"] = make_msgid()
    letter.set_content(
        f"This letter was sent through the SMTP account {account.label}"
        f" ({account.host}:{account.port}, security: {account.security}) to check it.\n"
    )
    return letter


def run_check(
    state: AppState,
    settings: SettingsInfo,
    account: AccountInfo,
    password: str | None | t.Callable[[], str | None],
    *,
    send_test: bool,
    recipient: str | None,
    kind: str = "check",
) -> CheckResult:
    """Check ``account`` (id 0 when not saved yet) and log the conversation."""
    started = time.perf_counter()
    log = state.smtp_logs.session(account, kind, settings)
    smtp = None
    message_id = None
    if log is not None:
        log.begin(None)
    try:
        if send_test and not recipient:
            raise DeliveryError(
                "test letter",
                Text(
                    "no-test-recipient",
                    N_("no recipient: set the test recipient in the settings or give one"),
                ),
                account_id=account.id or None,
            )
        smtp = open_connection(
            account,
            password,
            timeout=settings.timeout_s,
            ca_file=state.config.ca_file,
            ehlo_name=state.config.ehlo_name,
            transcript=log,
        )
        if send_test:
            assert recipient is not None
            letter = test_letter(account, recipient)
            message_id = letter["Message-ID"]
            try:
                smtp.send_message(letter, from_addr=account.sender_email, to_addrs=[recipient])
            except Exception as err:  # noqa: BLE001 - every failure becomes a result
                raise failure("test letter", err, account) from None
        close_quietly(smtp)
        smtp = None
        what = f"test letter {message_id} accepted" if send_test else "connected and logged in"
        result = CheckResult(
            True, None, None, None, time.perf_counter() - started, f"OK: {what}.", message_id
        )
    except DeliveryError as err:
        close_quietly(smtp)
        result = CheckResult(
            False,
            err.stage,
            err.code,
            err.reply,
            time.perf_counter() - started,
            str(err),
            message_id,
            hint_for(err, err.cause, account),
            err.reason,
        )
    if log is not None:
        log.end("ok" if result.ok else f"failed: {result.message}")
        log.close()
    account_checked.send(current_app._get_current_object(), account=account, result=result)  # type: ignore[attr-defined]
    return result
