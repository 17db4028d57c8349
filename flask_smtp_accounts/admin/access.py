"""Who may open the admin pages: the site's access rule, deny by default.

The site registers one callable with :meth:`SMTPAccounts.access_rule`; it
gets a permission name and answers yes or no. Without a rule nobody may
do anything, so mounting the views never opens them by accident.
"""

from __future__ import annotations

import os
import typing as t

from flask import current_app, make_response, request, url_for
from flask.typing import ResponseReturnValue
from flask_admin.helpers import is_safe_url
from flask_babel import format_datetime

from . import i18n

if t.TYPE_CHECKING:
    from flask_admin import Admin, BaseView

    # What flask-admin's BaseView.create_blueprint returns: a Blueprint that also takes a host.
    from flask_admin.blueprints import _BlueprintWithHostSupport as Blueprint

    from ..api import SMTPAccountsAPI
    from ..state import AppState

    # ProtectedView is always mixed in before flask-admin's BaseView (or a subclass, ModelView); to the
    # type checker it is one, so that its calls through super() are checked against BaseView's.
    _ViewBase = BaseView
else:
    _ViewBase = object

#: May read the sending and check logs.
VIEW_LOGS = "view_logs"
#: May list, add, change, check and delete accounts, delete logs, and preview routing.
MANAGE_ACCOUNTS = "manage_accounts"
#: May change the settings.
MANAGE_SETTINGS = "manage_settings"
#: May see the outbox: letters waiting, sending and sent per account.
VIEW_OUTBOX = "view_outbox"
#: May pause and resume an account's queue and cancel queued letters.
MANAGE_OUTBOX = "manage_outbox"
PERMISSIONS = (VIEW_LOGS, MANAGE_ACCOUNTS, MANAGE_SETTINGS, VIEW_OUTBOX, MANAGE_OUTBOX)
#: What each permission lets a person do, as the refusal page says it.
PERMISSION_TEXT = {
    VIEW_LOGS: i18n._l("read the sending logs and the message log"),
    MANAGE_ACCOUNTS: i18n._l("add, change, check and delete SMTP accounts, and resend letters"),
    MANAGE_SETTINGS: i18n._l("change the settings"),
    VIEW_OUTBOX: i18n._l("see the outbox: letters queued, sending and sent per account"),
    MANAGE_OUTBOX: i18n._l("pause and resume an account's queue and cancel queued letters"),
}
FORBIDDEN_TEMPLATE = "smtp_accounts/forbidden.html"

TEMPLATES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "templates")


def state() -> AppState:
    try:
        return t.cast("AppState", current_app.extensions["smtp_accounts"])
    except KeyError:
        raise RuntimeError(
            "The SMTP accounts admin views are mounted on an app without SMTPAccounts: call init_app(app) first."
        ) from None


def extension() -> SMTPAccountsAPI:
    """The app's SMTPAccounts, whose API the pages call (``AppState`` types it as an object, being below it)."""
    return t.cast("SMTPAccountsAPI", state().ext)


def allowed(permission: str) -> bool:
    """Whether the site's access rule grants ``permission`` for this request."""
    return extension().is_allowed(permission)


class ProtectedView(_ViewBase):
    """Mixed into every view of the extension: access, templates, translations.

    ``permission`` is what opening the view needs. Refused requests get 403,
    not a redirect: the extension knows nothing of the site's login page.
    The 403 is a page in the admin's look that names the missing
    permission and links back (:meth:`refuse`).
    """

    permission: str = MANAGE_ACCOUNTS
    #: The extension's views by page name, each with its endpoint, for ``sa_url`` (set by ``init_admin``).
    _sa_siblings: dict[str, tuple[BaseView, str]]

    def is_accessible(self) -> bool:
        if "babel" not in current_app.extensions:
            raise RuntimeError(
                "The SMTP accounts admin pages (and flask-admin) need flask-babel on the app: call Babel(app)."
            )
        return allowed(self.permission)

    def inaccessible_callback(self, name: str, **kwargs: t.Any) -> ResponseReturnValue:
        return self.refuse(self.permission)

    def refuse(self, permission: str) -> ResponseReturnValue:
        """Status 403 with a page that says which permission is missing, and a link back."""
        page = self.render(
            FORBIDDEN_TEMPLATE,
            missing=permission,
            missing_text=PERMISSION_TEXT.get(permission, ""),
            back_url=_back_url(self),
        )
        return make_response(page, 403)

    def create_blueprint(self, admin: Admin) -> Blueprint:
        """The view's blueprint, finding templates in the package after the site's own."""
        blueprint = super().create_blueprint(admin)
        blueprint.template_folder = TEMPLATES
        return blueprint

    def render(self, template: str, **kwargs: t.Any) -> str:
        kwargs.setdefault("_sa", i18n.gettext)
        kwargs.setdefault("smtp_settings", state().directory.settings())
        kwargs.setdefault("sa_allowed", allowed)
        kwargs.setdefault("sa_url", _sibling_url(self))
        kwargs.setdefault("sa_cooling", cooling_accounts)
        return super().render(template, **kwargs)


def _back_url(view: ProtectedView) -> str:
    """Where "back" leads: the page the person came from on this site, else the admin's home."""
    came_from = request.referrer
    if came_from and came_from != request.url and is_safe_url(came_from):
        return came_from
    if view.admin is None:
        raise RuntimeError("The view is on no Admin: mount the views with SMTPAccounts.init_admin(admin).")
    return url_for(f"{view.admin.endpoint}.index")


def cooling_accounts() -> list[dict[str, t.Any]]:
    """Accounts that routing skips now after a connection failure (for the notices of the pages)."""
    ext = extension()
    cooling = [h for h in ext.account_health().values() if h.cooling_down]
    if not cooling:
        return []
    labels = {a.id: a.label for a in ext.list_accounts([h.account_id for h in cooling])}
    return [
        {
            "id": h.account_id,
            "label": labels.get(h.account_id, h.account_id),
            "until": format_datetime(h.cooldown_until),
            "error": h.last_error,
        }
        for h in cooling
    ]


def _sibling_url(view: ProtectedView) -> t.Callable[..., str]:
    """``sa_url("settings")``: the URL of another page of the extension."""

    def url(name: str, **values: t.Any) -> str:
        sibling, endpoint = view._sa_siblings[name]
        return url_for(sibling.endpoint + endpoint, **values)

    return url
