"""Send all of a Flask site's mail through SMTP accounts kept in its own database."""

from __future__ import annotations

from .check import CheckResult
from .errors import (
    AccountCheckFailed,
    AccountInUseError,
    AccountNotFoundError,
    AlertChannelNotFoundError,
    AlertDeliveryError,
    CeleryNotConfiguredError,
    ConnectionsBusyError,
    DeliveryError,
    EncryptionError,
    FieldError,
    InvalidAccountError,
    InvalidAddressError,
    InvalidAlertError,
    InvalidArgumentError,
    InvalidSettingError,
    LettersNotStoredError,
    LogAddressError,
    LogNotFoundError,
    MessageLogError,
    MessageNotFoundError,
    NotFoundError,
    OAuth2Error,
    QuotaExceededError,
    ResendError,
    SignInError,
    SMTPAccountsError,
    UnknownFieldError,
)
from .extension import SMTPAccounts
from .health import AccountHealth
from .log_files import LogChunk, LogInfo
from .message_info import MessageInfo, Page
from .models import AccountInfo
from .outbox import DeliveryReport
from .redelivery import RetryReport
from .routing import Choice, bulk_sending
from .settings import SettingsInfo
from .signals import (
    account_checked,
    account_cooled_down,
    letters_queued,
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
    "CeleryNotConfiguredError",
    "AccountNotFoundError",
    "AlertChannelNotFoundError",
    "AlertDeliveryError",
    "CheckResult",
    "Choice",
    "ConnectionsBusyError",
    "DeliveryError",
    "DeliveryReport",
    "EncryptionError",
    "FieldError",
    "InvalidAccountError",
    "InvalidAddressError",
    "InvalidArgumentError",
    "InvalidAlertError",
    "InvalidSettingError",
    "LettersNotStoredError",
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
    "QuotaExceededError",
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
    "letters_queued",
    "message_queued",
    "message_sent",
    "oauth_token_refused",
    "quota_reached",
    "send_failed",
]
