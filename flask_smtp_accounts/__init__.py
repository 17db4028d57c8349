"""Send all of a Flask site's mail through SMTP accounts kept in its own database."""

from __future__ import annotations

from .check import CheckResult
from .errors import (
    DeliveryError,
    EncryptionError,
    InvalidAccountError,
    InvalidSettingError,
    LogAddressError,
    LogNotFoundError,
    SMTPAccountsError,
)
from .extension import AccountCheckFailed, SMTPAccounts
from .log_files import LogChunk, LogInfo
from .models import AccountInfo
from .routing import Choice, bulk_sending
from .settings import SettingsInfo
from .signals import account_checked, message_sent, send_failed

__all__ = [
    "AccountCheckFailed",
    "AccountInfo",
    "CheckResult",
    "Choice",
    "DeliveryError",
    "EncryptionError",
    "InvalidAccountError",
    "InvalidSettingError",
    "LogAddressError",
    "LogChunk",
    "LogInfo",
    "LogNotFoundError",
    "SMTPAccounts",
    "SMTPAccountsError",
    "SettingsInfo",
    "account_checked",
    "bulk_sending",
    "message_sent",
    "send_failed",
]
