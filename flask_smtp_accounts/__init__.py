"""Send all of a Flask site's mail through SMTP accounts kept in its own database."""

from __future__ import annotations

from .check import CheckResult
from .errors import (
    AccountInUseError,
    AlertDeliveryError,
    ConnectionsBusyError,
    DeliveryError,
    EncryptionError,
    InvalidAccountError,
    InvalidAddressError,
    InvalidArgumentError,
    InvalidSettingError,
    LogAddressError,
    LogNotFoundError,
    MessageLogError,
    OAuth2Error,
    ResendError,
    SMTPAccountsError,
)
from .extension import AccountCheckFailed, SMTPAccounts
from .health import AccountHealth
from .log_files import LogChunk, LogInfo
from .message_log import MessageInfo, Page
from .models import AccountInfo
from .outbox import DeliveryReport
from .retry import RetryReport
from .routing import Choice, bulk_sending
from .settings import SettingsInfo
from .signals import (
    account_checked,
    account_cooled_down,
    message_queued,
    message_sent,
    oauth_token_refused,
    quota_reached,
    send_failed,
)

__all__ = [
    "AccountCheckFailed",
    "AlertDeliveryError",
    "AccountHealth",
    "AccountInUseError",
    "AccountInfo",
    "CheckResult",
    "Choice",
    "ConnectionsBusyError",
    "DeliveryError",
    "DeliveryReport",
    "EncryptionError",
    "InvalidAccountError",
    "InvalidAddressError",
    "InvalidArgumentError",
    "InvalidSettingError",
    "LogAddressError",
    "LogChunk",
    "LogInfo",
    "LogNotFoundError",
    "MessageInfo",
    "MessageLogError",
    "OAuth2Error",
    "Page",
    "ResendError",
    "RetryReport",
    "SMTPAccounts",
    "SMTPAccountsError",
    "SettingsInfo",
    "account_checked",
    "account_cooled_down",
    "bulk_sending",
    "message_queued",
    "message_sent",
    "oauth_token_refused",
    "quota_reached",
    "send_failed",
]
