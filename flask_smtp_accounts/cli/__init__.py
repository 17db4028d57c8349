"""``flask smtp-accounts ...``: the command line, a thin layer over the Python API.

Every command calls one method of :class:`~flask_smtp_accounts.SMTPAccounts`
and prints its answer; the logic lives there, once. Errors the extension
raises on purpose become one line on stderr and exit status 1, never a
traceback. Passwords (and OAuth2 client secrets and refresh tokens) are
read from a hidden prompt or from an environment variable named by
``--password-env`` (``--client-secret-env``, ``--refresh-token-env``),
never from an argument, so that they stay out of shell history and ``ps``.
"""

from __future__ import annotations

from . import accounts, alerts, logs, outbox, settings
from .base import CommandGroup

smtp_accounts_cli = CommandGroup("smtp-accounts", help="Manage the SMTP accounts that carry the site's mail.")
for _module in (accounts, logs, settings, outbox, alerts):
    for _command in _module.COMMANDS:
        smtp_accounts_cli.add_command(_command)
