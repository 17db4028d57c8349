"""The routing preview: which account a letter from a given address would go through, and why."""

from __future__ import annotations

from flask import flash, request
from flask.typing import ResponseReturnValue
from flask_admin import BaseView, expose

from ..errors import InvalidAddressError
from ..routing import Choice
from .access import MANAGE_ACCOUNTS, ProtectedView, extension
from .forms import PreviewForm
from .i18n import RULES, _


class RoutingPreviewView(ProtectedView, BaseView):
    """Asks ``choose_account`` without sending anything."""

    permission = MANAGE_ACCOUNTS
    template = "smtp_accounts/preview.html"

    @expose("/", methods=("GET", "POST"))
    def index(self) -> ResponseReturnValue:
        form = PreviewForm()
        choice: Choice | None = None
        if form.validate_on_submit():
            try:
                choice = extension().choose_account((form.sender.data or "").strip(), bulk=form.bulk.data)
            except InvalidAddressError:
                form.sender.errors = [
                    *form.sender.errors,
                    _("Enter an email address, or a name and an address."),
                ]
        elif request.method == "POST" and "csrf_token" in form.errors:
            flash(_("The request was refused: the form lacked its security token."), "error")
        return self.render(
            self.template,
            form=form,
            choice=choice,
            rule_text=str(RULES[choice.rule]) if choice is not None else None,
        )
