"""Send all of a Flask site's mail through SMTP accounts kept in its own database."""

from __future__ import annotations

from .check import CheckResult
from .errors import (
    AccountCheckFailed,
    AccountInUseError,
    AccountNotFoundError,
    AlertChannelNotFoundError,
    AlertDeliveryError,
    DeliveryError,
    EncryptionError,
    FieldError,
    InvalidAccountError,
    InvalidAddressError,
    InvalidAlertError,
    InvalidSettingError,
    LogAddressError,
    LogNotFoundError,
    MessageLogError,
    MessageNotFoundError,
    NotFoundError,
    OAuth2Error,
    ResendError,
    SignInError,
    SMTPAccountsError,
    UnknownFieldError,
)
from .extension import SMTPAccounts
from .health import AccountHealth
from .log_files import LogChunk, LogInfo
from .message_log import MessageInfo, Page
from .models import AccountInfo
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
    "AccountHealth",
    "AccountInUseError",
    "AccountInfo",
    "AccountNotFoundError",
    "AlertChannelNotFoundError",
    "AlertDeliveryError",
    "CheckResult",
    "Choice",
    "DeliveryError",
    "EncryptionError",
    "FieldError",
    "InvalidAccountError",
    "InvalidAddressError",
    "InvalidAlertError",
    "InvalidSettingError",
    "LogAddressError",
    "LogChunk",
    "LogInfo",
    "LogNotFoundError",
    "MessageInfo",
    "MessageLogError",
    "MessageNotFoundError",
    "NotFoundError",
    "OAuth2Error",
    "Page",
    "ResendError",
    "RetryReport",
    "SMTPAccounts",
    "SMTPAccountsError",
    "SettingsInfo",
    "SignInError",
    "UnknownFieldError",
    "account_checked",
    "account_cooled_down",
    "bulk_sending",
    "message_queued",
    "message_sent",
    "oauth_token_refused",
    "quota_reached",
    "send_failed",
]
