"""Per-account SMTP logs (checks and sending). Filled in by the logs issue."""

from __future__ import annotations

import typing as t

from .models import AccountInfo
from .settings import SettingsInfo


class SMTPLogs:
    """Opens a log session for one connection of one account."""

    def __init__(self, log_dir: str) -> None:
        self.log_dir = log_dir

    def session(self, account: AccountInfo, kind: str, settings: SettingsInfo) -> t.Any:
        """A transcript for one connection, or ``None`` when nothing is logged."""
        return None
