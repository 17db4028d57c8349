"""A site with the admin pages mounted, for the admin tests (test client and browser).

The site is the one of ``apps.make_site`` plus what a real site adds for
the admin: flask-babel with a locale selector (cookie ``lang``),
flask-admin, flask-login, and the access rule wired to the user's
permissions. ``/test-login/<name>`` logs a user in.
"""

from __future__ import annotations

import pathlib
import threading
import typing as t
from dataclasses import dataclass

from apps import Site, make_site
from flask import request
from flask_admin import Admin
from flask_babel import Babel
from flask_login import LoginManager, UserMixin, current_user, login_user
from werkzeug.serving import WSGIRequestHandler, make_server

USERS: dict[str, frozenset[str]] = {
    "admin": frozenset({"view_logs", "manage_accounts", "manage_settings", "view_outbox", "manage_outbox"}),
    "outbox_watcher": frozenset({"view_outbox"}),
    "reader": frozenset({"view_logs"}),
    "nobody": frozenset(),
}


class User(UserMixin):
    def __init__(self, name: str) -> None:
        self.id = name
        self.permissions = USERS[name]


@dataclass
class AdminSite:
    site: Site
    admin: Admin

    @property
    def app(self) -> t.Any:
        return self.site.app

    @property
    def ext(self) -> t.Any:
        return self.site.ext


def make_admin_site(
    instance: pathlib.Path,
    *,
    access_rule: bool = True,
    enabled: bool = True,
    views: t.Mapping[str, type[t.Any]] | None = None,
    **config: t.Any,
) -> AdminSite:
    """The test site with Babel, flask-admin, flask-login and (unless told not to) the access rule.

    ``views`` mounts a site's subclasses of the pages (``init_admin(admin, views=...)``).
    """
    site = make_site(instance, enabled=enabled, **config)
    app = site.app
    Babel(app, locale_selector=lambda: request.cookies.get("lang", "en"))
    login_manager = LoginManager(app)

    @login_manager.user_loader
    def load_user(name: str) -> User | None:
        return User(name) if name in USERS else None

    @app.route("/test-login/<name>")
    def test_login(name: str) -> str:
        login_user(User(name))
        return f"logged in as {name}"

    admin = Admin(app, name="Site admin")
    site.ext.init_admin(admin, views=views)
    if access_rule:

        @site.ext.access_rule
        def can(permission: str) -> bool:
            return bool(current_user.is_authenticated and permission in current_user.permissions)

    return AdminSite(site, admin)


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: t.Any, **kwargs: t.Any) -> None:
        pass


class LiveServer:
    """The site served on 127.0.0.1 by werkzeug in a thread, for the browser."""

    def __init__(self, app: t.Any) -> None:
        self._server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="live-site", daemon=True)

    def __enter__(self) -> LiveServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
