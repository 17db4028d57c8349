"""The account form's "Sign in with Microsoft / Google" button, and where the provider sends the browser back."""

from __future__ import annotations

import typing as t

from flask import request, url_for
from markupsafe import Markup, escape
from wtforms import Field

from .i18n import _, _l

#: The endpoints of the accounts view (relative to its blueprint).
START_ENDPOINT = ".oauth2_sign_in_view"
CALLBACK_ENDPOINT = ".oauth2_callback_view"


def redirect_uri() -> str:
    """The address the provider sends the browser back to: register it with the app."""
    return url_for(CALLBACK_ENDPOINT, _external=True)


class SignInButton:
    """Renders the sign-in button (it submits the whole form to the sign-in page) and the redirect URL."""

    def __call__(self, field: Field, **kwargs: t.Any) -> Markup:
        target = url_for(
            START_ENDPOINT, id=request.args.get("id") or None, url=request.args.get("url") or None
        )
        label = _("Sign in with Microsoft / Google")
        note = _(
            "Register this redirect URL with the app (Microsoft Entra: Authentication > Web > Redirect URIs;"
            " Google Cloud: Credentials > Authorized redirect URIs):"
        )
        labels = {
            "microsoft": _("Sign in with Microsoft"),
            "google": _("Sign in with Google"),
            "custom": _("Sign in with the provider"),
        }
        data = "".join(f' data-label-{name}="{escape(text)}"' for name, text in labels.items())
        return Markup(
            f'<button type="submit" id="{escape(field.id)}" class="btn btn-outline-primary sa-oauth2-sign-in"'
            f' formaction="{escape(target)}"{data}>{escape(label)}</button>'
            f'<p class="form-text text-muted small sa-redirect-uri">{escape(note)}'
            f" <code>{escape(redirect_uri())}</code></p>"
        )


class SignInField(Field):
    """A form field that is only the sign-in button; it carries no data."""

    widget = SignInButton()

    def process_formdata(self, valuelist: list[t.Any]) -> None:
        self.data = None

    def populate_obj(self, obj: t.Any, name: str) -> None:
        pass


def sign_in_field() -> SignInField:
    return SignInField(
        _l("Refresh token by signing in"),
        description=_l(
            "Opens the provider's sign-in page. After you allow sending as the mailbox, the site stores the refresh"
            " token, checks the account and saves it; if the check fails, nothing is saved. An empty login is"
            " filled with the address you sign in with."
        ),
    )
