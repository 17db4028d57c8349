"""The "Sign in with Microsoft / Google" button of the account form, and the page the provider sends back to.

A thin layer over :mod:`flask_smtp_accounts.oauth2_sign_in`: the button
submits the account form to :func:`start`, which checks it and redirects
to the provider; the provider redirects to :func:`callback`, which saves
the account with its new refresh token (after the usual check) or says
why nothing was stored.
"""

from __future__ import annotations

import typing as t

from flask import flash, redirect, request
from flask.typing import ResponseReturnValue
from flask_admin.contrib.sqla import ModelView
from flask_admin.form import FormOpts
from flask_admin.helpers import get_redirect_target

from ..errors import AccountCheckFailed, DeliveryError, InvalidAccountError, SignInError, SMTPAccountsError
from ..ids import parse_id
from ..oauth2_sign_in import finish_sign_in, save_signed_in, start_sign_in
from .access import extension
from .forms import AccountForm
from .i18n import _, account_refused, describe_error, describe_failure, flash_error
from .sign_in_field import redirect_uri


def start(view: ModelView) -> ResponseReturnValue:
    """Check the submitted account form and send the browser to the provider."""
    ext = extension()
    account_id = _account_id()
    model = None
    if account_id:
        try:
            model = ext.get_account(account_id)
        except LookupError:
            flash(_("There is no such account."), "error")
            return redirect(view.get_url(".index_view"))
    # The accounts view's forms are AccountForms.
    form = t.cast(AccountForm, view.edit_form(obj=model) if model is not None else view.create_form())
    if view.validate_form(form):
        fields = form.account_fields()
        client_secret = fields.pop("oauth_client_secret", None)
        fields.pop("oauth_refresh_token", None)
        try:
            return redirect(
                start_sign_in(
                    ext,
                    fields,
                    account_id=account_id,
                    client_secret=client_secret,
                    redirect_uri=redirect_uri(),
                )
            )
        except InvalidAccountError as err:
            account_refused(form, err)
    return _form_again(view, form, model)


def callback(view: ModelView) -> ResponseReturnValue:
    """Where the provider sends the browser back: store the refresh token, or say why nothing was stored."""
    ext = extension()
    try:
        signed_in = finish_sign_in(ext, request.args)
    except (SignInError, DeliveryError, LookupError) as err:
        message = _("There is no such account.") if isinstance(err, LookupError) else describe_error(err)
        flash_error(_("Signing in failed: %(error)s", error=message), getattr(err, "hint", None))
        return redirect(view.get_url(".index_view"))
    back = (
        view.get_url(".edit_view", id=signed_in.account_id)
        if signed_in.account_id
        else view.get_url(".create_view")
    )
    try:
        account = save_signed_in(ext, signed_in)
    except AccountCheckFailed as err:
        flash_error(
            _("You signed in, but the account failed its check, so nothing was saved.")
            + " "
            + describe_failure(err.result),
            err.result.hint,
        )
        return redirect(back)
    except SMTPAccountsError as err:
        flash(
            _("You signed in, but the account was not saved: %(error)s", error=describe_error(err)), "error"
        )
        return redirect(back)
    flash(
        _(
            "Signed in as %(login)s. The account passed the check and was saved with its new refresh token.",
            login=account.login,
        ),
        "success",
    )
    return redirect(view.get_url(".edit_view", id=account.id))


def _account_id() -> int:
    return parse_id(request.args.get("id") or "0") or 0


def _form_again(view: ModelView, form: t.Any, model: t.Any) -> ResponseReturnValue:
    """The account form once more, with what was typed (never a secret), as flask-admin shows it."""
    return_url = get_redirect_target() or view.get_url(".index_view")
    if model is None:
        opts = FormOpts(widget_args=view.form_widget_args, form_rules=view._form_create_rules)
        return view.render(view.create_template, form=form, form_opts=opts, return_url=return_url)
    opts = FormOpts(widget_args=view.form_widget_args, form_rules=view._form_edit_rules)
    return view.render(view.edit_template, model=model, form=form, form_opts=opts, return_url=return_url)
