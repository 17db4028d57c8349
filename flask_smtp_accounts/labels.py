"""How a person names an account, a deleted one, and mail that no account carried.

Every place that names an account (the admin pages, the command line, the
message log, the SMTP logs, the alerts, the dashboard and the summary)
takes its words from here. The names that are sentences of the extension
rather than data (a deleted account, an account not saved yet) are
:class:`~flask_smtp_accounts.texts.Text`: English for the command line and
the logs, said in the page's language by the admin (``admin/i18n.say``).
"""

from __future__ import annotations

import typing as t

from .texts import N_, Text

#: A list's short name for letters that no account carried (message log, dashboard).
DEFAULT_ROUTE = "Flask-Mail default"
#: The same route where a sentence names it ("not delivered through Flask-Mail's own settings").
OWN_SETTINGS = "Flask-Mail's own settings"
#: The check log of accounts not saved yet (account id 0).
NEW_ACCOUNT = "New account (not saved yet)"


def account_label(sender_name: str, sender_email: str) -> str:
    """``Name <email>``, or the email alone when the account has no sender name."""
    return f"{sender_name} <{sender_email}>" if sender_name else sender_email


def deleted_account_label(account_id: int) -> Text:
    """The name of an account that is gone but still named by logs and letters."""
    return Text("deleted-account", N_("Account %(id)s (deleted)"), id=account_id)


def route_label(account_id: int | None, labels: t.Mapping[int, str], default: str = DEFAULT_ROUTE) -> str:
    """The label of ``account_id`` among ``labels``; ``default`` for no account, and a deleted one said so."""
    if account_id is None:
        return default
    return labels.get(account_id) or deleted_account_label(account_id)
