"""The admin pages, as flask-admin 2.x views that a site adds to its own ``Admin``.

One call mounts them under one menu category::

    admin = Admin(app)
    smtp_accounts.init_admin(admin)

and one rule says who may use them (deny by default)::

    @smtp_accounts.access_rule
    def can(permission: str) -> bool:
        return current_user.is_authenticated and current_user.is_admin

Templates live in ``templates/smtp_accounts/``; a site overrides one by
putting a file of the same name in its own templates folder.
"""

from __future__ import annotations

import typing as t

from .access import MANAGE_ACCOUNTS, MANAGE_SETTINGS, PERMISSIONS, VIEW_LOGS, ProtectedView
from .accounts import AccountsView
from .alerts import AlertsView
from .dashboard import DashboardView
from .i18n import _l
from .logs import LogsView
from .messages import MessagesView
from .preview import RoutingPreviewView
from .settings import SettingsView

if t.TYPE_CHECKING:
    from flask_admin import Admin

    from ..extension import SMTPAccounts

__all__ = [
    "MANAGE_ACCOUNTS",
    "MANAGE_SETTINGS",
    "PERMISSIONS",
    "VIEW_LOGS",
    "AccountsView",
    "AlertsView",
    "DashboardView",
    "LogsView",
    "MessagesView",
    "ProtectedView",
    "RoutingPreviewView",
    "SettingsView",
    "mount",
]

#: The menu category, as in the original.
CATEGORY = _l("Mail through SMTP")


def mount(
    ext: SMTPAccounts, admin: Admin, *, category: t.Any = None, url_prefix: str = "smtp-accounts"
) -> dict[str, t.Any]:
    """Add the extension's views to ``admin``; returns them by name.

    URLs are ``<admin url>/<url_prefix>/`` (the dashboard, first in the
    category), ``.../accounts/``, ``.../logs/``, ``.../messages/``,
    ``.../alerts/``, ``.../settings/`` and ``.../routing/``; endpoints start
    with ``smtp_accounts_``.
    """
    category = CATEGORY if category is None else category
    views: dict[str, t.Any] = {
        "dashboard": DashboardView(
            name=_l("Dashboard"),
            category=category,
            endpoint="smtp_accounts_dashboard",
            url=url_prefix,
        ),
        "accounts": AccountsView(
            ext.Account,
            ext.db,
            name=_l("SMTP accounts"),
            category=category,
            endpoint="smtp_accounts_accounts",
            url=f"{url_prefix}/accounts",
        ),
        "logs": LogsView(
            name=_l("Sending logs"),
            category=category,
            endpoint="smtp_accounts_logs",
            url=f"{url_prefix}/logs",
        ),
        "messages": MessagesView(
            name=_l("Message log"),
            category=category,
            endpoint="smtp_accounts_messages",
            url=f"{url_prefix}/messages",
        ),
        "alerts": AlertsView(
            name=_l("Alerts"),
            category=category,
            endpoint="smtp_accounts_alerts",
            url=f"{url_prefix}/alerts",
        ),
        "settings": SettingsView(
            name=_l("Settings"),
            category=category,
            endpoint="smtp_accounts_settings",
            url=f"{url_prefix}/settings",
        ),
        "preview": RoutingPreviewView(
            name=_l("Routing preview"),
            category=category,
            endpoint="smtp_accounts_routing",
            url=f"{url_prefix}/routing",
        ),
    }
    siblings = {
        "accounts": (views["accounts"], ".index_view"),
        "account_edit": (views["accounts"], ".edit_view"),
        "logs": (views["logs"], ".index"),
        "messages": (views["messages"], ".index"),
        "message_view": (views["messages"], ".view"),
        "dashboard": (views["dashboard"], ".index"),
        "alerts": (views["alerts"], ".index"),
        "settings": (views["settings"], ".index"),
        "preview": (views["preview"], ".index"),
    }
    for view in views.values():
        view._sa_siblings = siblings
        admin.add_view(view)
    return views
