"""The Python API of the extension, in three parts named for what they serve.

:class:`~flask_smtp_accounts.SMTPAccounts` is this API plus its set-up
(``init_app``, ``init_admin``). The admin pages, the command line and the
Celery tasks are thin faces over these methods and are typed against
:class:`SMTPAccountsAPI`, which imports none of them.
"""

from __future__ import annotations

from .accounts import ACCOUNT_FIELDS, AccountsAPI, BeforeCommit
from .messages import MessagesAPI
from .monitoring import MonitoringAPI

__all__ = ["ACCOUNT_FIELDS", "BeforeCommit", "SMTPAccountsAPI"]


class SMTPAccountsAPI(AccountsAPI, MessagesAPI, MonitoringAPI):
    """Every method of the Python API (see :class:`~flask_smtp_accounts.SMTPAccounts`)."""
