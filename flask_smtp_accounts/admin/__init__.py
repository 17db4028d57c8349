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

from .access import (
    MANAGE_ACCOUNTS,
    MANAGE_OUTBOX,
    MANAGE_SETTINGS,
    PERMISSIONS,
    VIEW_LOGS,
    VIEW_OUTBOX,
    ProtectedView,
)
from .accounts import AccountsView
from .alerts import AlertsView
from .dashboard import DashboardView
from .i18n import _l
from .logs import LogsView
from .messages import MessagesView
from .outbox import OutboxView
from .preview import RoutingPreviewView
from .settings import SettingsView

if t.TYPE_CHECKING:
    from flask_admin import Admin

    from ..api import SMTPAccountsAPI

__all__ = [
    "MANAGE_ACCOUNTS",
    "MANAGE_OUTBOX",
    "MANAGE_SETTINGS",
    "PERMISSIONS",
    "VIEW_LOGS",
    "VIEW_OUTBOX",
    "AccountsView",
    "AlertsView",
    "DashboardView",
    "LogsView",
    "MessagesView",
    "OutboxView",
    "ProtectedView",
    "RoutingPreviewView",
    "SettingsView",
    "mount",
]

#: The menu category: the name under which the original module's users already look for these pages.
CATEGORY = _l("Mail through SMTP")


#: The pages in menu order: name -> (view class, menu name, URL below the prefix). The dashboard
#: comes first and takes the prefix itself; endpoints are ``smtp_accounts_<URL>`` (``_dashboard``).
PAGES: dict[str, tuple[type[t.Any], t.Any, str]] = {
    "dashboard": (DashboardView, _l("Dashboard"), ""),
    "accounts": (AccountsView, _l("SMTP accounts"), "accounts"),
    "logs": (LogsView, _l("Sending logs"), "logs"),
    "messages": (MessagesView, _l("Message log"), "messages"),
    "outbox": (OutboxView, _l("Outbox"), "outbox"),
    "alerts": (AlertsView, _l("Alerts"), "alerts"),
    "settings": (SettingsView, _l("Settings"), "settings"),
    "preview": (RoutingPreviewView, _l("Routing preview"), "routing"),
}


def mount(
    ext: SMTPAccountsAPI,
    admin: Admin,
    *,
    category: t.Any = None,
    url_prefix: str = "smtp-accounts",
    views: t.Mapping[str, type[t.Any]] | None = None,
) -> dict[str, t.Any]:
    """Add the extension's views to ``admin``; returns them by name.

    URLs are ``<admin url>/<url_prefix>/`` (the dashboard, first in the
    category), ``.../accounts/``, ``.../logs/``, ``.../messages/``, ``.../outbox/``,
    ``.../alerts/``, ``.../settings/`` and ``.../routing/``; endpoints start
    with ``smtp_accounts_``. ``views`` puts a site's subclass in place of a
    page's view, e.g. ``{"accounts": MyAccountsView}`` for its
    ``on_model_change`` hooks.
    """
    category = CATEGORY if category is None else category
    chosen = {name: page[0] for name, page in PAGES.items()}
    for name, cls in (views or {}).items():
        if name not in PAGES or not (isinstance(cls, type) and issubclass(cls, PAGES[name][0])):
            known = ", ".join(f"{n}: a subclass of {p[0].__name__}" for n, p in PAGES.items())
            raise TypeError(f"views={{{name!r}: {cls!r}}} is not one of the pages ({known}).")
        chosen[name] = cls
    mounted: dict[str, t.Any] = {}
    for name, (_default, menu_name, path) in PAGES.items():
        model_args = (ext.Account, ext.db) if name == "accounts" else ()
        mounted[name] = chosen[name](
            *model_args,
            name=menu_name,
            category=category,
            endpoint=f"smtp_accounts_{path or 'dashboard'}",
            url=f"{url_prefix}/{path}" if path else url_prefix,
        )
    siblings = {
        name: (view, ".index_view" if name == "accounts" else ".index") for name, view in mounted.items()
    }
    siblings["account_edit"] = (mounted["accounts"], ".edit_view")
    siblings["message_view"] = (mounted["messages"], ".view")
    for view in mounted.values():
        view._sa_siblings = siblings
        admin.add_view(view)
    return mounted
