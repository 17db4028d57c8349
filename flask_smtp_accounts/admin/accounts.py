"""The SMTP accounts list and form: a flask-admin ``ModelView`` over the Python API.

Saving goes through ``add_account``/``update_account``, so the account is
checked against its server first and nothing is written when the check
fails; the form then comes back with the admin's input (never the
password) and the stage and reply that failed.
"""

from __future__ import annotations

import logging
import typing as t

from flask import abort, flash, g, redirect, request
from flask.typing import ResponseReturnValue
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.babel import gettext as admin_gettext
from flask_admin.babel import lazy_gettext
from flask_admin.contrib.sqla import ModelView
from flask_admin.form import SecureForm
from flask_admin.helpers import get_redirect_target
from flask_admin.model.template import EndpointLinkRowAction, macro
from markupsafe import Markup, escape

from ..addresses import reserved_domain
from ..errors import InvalidAccountError, SMTPAccountsError
from ..ids import parse_id
from ..presets import PRESETS
from ..quotas import is_limited, today_figures
from . import oauth2
from .access import MANAGE_ACCOUNTS, ProtectedView, extension
from .forms import AccountForm, RowForm, TestLetterForm, _choices
from .i18n import (
    ACCOUNT_FIELD_ERRORS,
    AUTH,
    SECURITY,
    _,
    _l,
    account_refused,
    describe_error,
    describe_failure,
    field_error,
    gettext,
    say,
    server_reply,
)
from .presets import preset_data
from .roles import carries_formatter, everyday_of, takeover_warning

if t.TYPE_CHECKING:
    from ..check import CheckResult

log = logging.getLogger(__name__)


def _note_reserved_domain(address: str) -> None:
    """Say, without refusing anything, that mail from a reserved domain reaches only servers that take it on purpose."""
    name = reserved_domain(address)
    if name is not None:
        flash(
            _(
                "Note: %(address)s ends in .%(name)s, a name reserved for private and test use that the internet"
                " does not route: only a server that accepts it on purpose (such as your own relay) carries its mail.",
                address=address,
                name=name,
            ),
            "info",
        )


def _choice_formatter(words: t.Mapping[str, t.Any]) -> t.Callable[..., str]:
    def format_value(view: t.Any, context: t.Any, model: t.Any, name: str) -> str:
        value = getattr(model, name)
        return str(words.get(value, value))

    return format_value


def _today_formatter(view: t.Any, context: t.Any, model: t.Any, name: str) -> Markup:
    """The list's "Today" cell: letters, and recipients when limited, against the daily limits."""
    figures = today_figures(model, g.get("sa_quota_usage", {}).get(model.id))
    if figures is None:
        return Markup('<span class="text-muted">&mdash;</span>')
    letters, recipients = figures
    lines = [escape(letters)]
    if recipients:
        lines.append(escape(gettext("recipients: %(figures)s", figures=recipients)))
    return Markup("<br>").join(lines)


def _with_backup_choices(form: t.Any, obj: t.Any) -> t.Any:
    """Offer every other account as a backup, those chosen first, in their order (the order they are tried in)."""
    if "backup_ids" in form:
        ext = extension()
        others = {a.id: a.label for a in ext.list_accounts() if obj is None or a.id != obj.id}
        chosen = [i for i in (form.backup_ids.data or ()) if i in others]
        form.backup_ids.choices = _choices(
            [(i, f"{i}: {others[i]}") for i in (*chosen, *(i for i in others if i not in chosen))]
        )
    return form


def _everyday_before(form: AccountForm) -> t.Any:
    """The account carrying the everyday mail of the form's address before the save."""
    address = (form["sender_email"].data or "").strip()
    return everyday_of(address) if address else None


def _warn_takeover(before: t.Any, account: t.Any) -> None:
    warning = takeover_warning(before, account)
    if warning:
        flash(warning, "warning")


class AccountsView(ProtectedView, ModelView):
    """SMTP accounts: list, create, edit, delete, toggle active, send a test letter."""

    permission = MANAGE_ACCOUNTS

    list_template = "smtp_accounts/account_list.html"
    create_template = "smtp_accounts/account_create.html"
    edit_template = "smtp_accounts/account_edit.html"
    test_letter_template = "smtp_accounts/test_letter.html"

    form = AccountForm
    form_base_class = SecureForm
    can_view_details = False
    can_export = False
    page_size = 20
    can_set_page_size = False
    column_sortable_list = ("id", "active", "sender_name", "sender_email", "host", "port", "security", "auth")
    column_list = (*column_sortable_list, "carries", "today")
    column_default_sort = "id"
    column_searchable_list = ("sender_email", "sender_name")
    column_labels = {
        "id": _l("ID"),
        "active": _l("Active"),
        "sender_name": _l("Sender name"),
        "sender_email": _l("Email"),
        "host": _l("Server"),
        "port": _l("Port"),
        "security": _l("Security"),
        "auth": _l("Authorization"),
        "carries": _l("Carries"),
        "today": _l("Today"),
    }
    column_descriptions = {
        "carries": _l("What routing sends through the account now, by the rules of the routing preview."),
        "today": _l(
            "Letters (and recipients) of the last 24 hours against the account's daily limits;"
            " only accounts with a limit are counted."
        ),
    }
    column_formatters = {
        "carries": carries_formatter,
        "today": _today_formatter,
        # flask-admin annotates macro()'s formatter more narrowly than its own column_formatters type.
        "active": macro("toggle_active"),  # type: ignore[dict-item]
        "security": _choice_formatter(SECURITY),
        "auth": _choice_formatter(AUTH),
    }
    column_extra_row_actions = [
        EndpointLinkRowAction("fa fa-paper-plane", ".test_letter_view", title=_l("Send a test letter")),
    ]

    #: The longest search the list takes: an email address is at most 254 characters, and SQLite
    #: refuses LIKE patterns past 50,000 bytes.
    max_search = 256

    def _get_list_extra_args(self) -> t.Any:
        """The list's page and search, refused when no database could answer them."""
        args = super()._get_list_extra_args()
        if args.page and parse_id(args.page * self.page_size) is None:
            abort(404)
        if args.search and len(args.search) > self.max_search:
            flash(
                _(
                    "A search holds at most %(count)s characters; this one was not run.",
                    count=self.max_search,
                ),
                "error",
            )
            args.search = None
        return args

    def get_list(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        """The page of accounts, and their use of the last 24 hours for the "Today" column, in one query."""
        count, data = super().get_list(*args, **kwargs)
        if isinstance(data, list):  # not a query left unexecuted (execute=False)
            g.sa_quota_usage = extension().quota_usage(a.id for a in data if is_limited(a))
        return count, data

    def get_one(self, id: t.Any) -> t.Any:  # noqa: A002 - flask-admin's name
        """The account of a URL's ``id``; ``None`` (flask-admin's "Record does not exist") when it is no id."""
        key = parse_id(id)
        return None if key is None else super().get_one(str(key))

    def search_placeholder(self) -> str:
        return _("Email or sender name")

    def get_empty_list_message(self) -> str:
        return _("There are no SMTP accounts yet.")

    def render(self, template: str, **kwargs: t.Any) -> str:
        if template == self.list_template:
            kwargs.setdefault("row_form", RowForm())
        if template in (self.create_template, self.edit_template):
            kwargs.setdefault("sa_presets", PRESETS)
            kwargs.setdefault("sa_preset_data", preset_data())
        return super().render(template, **kwargs)

    # --- saving through the API ---------------------------------------------

    def validate_form(self, form: t.Any) -> bool:
        valid = bool(super().validate_form(form))
        if not valid and isinstance(form, AccountForm) and "csrf_token" in form.errors:
            flash(
                _("The request was refused: the form lacked its security token. Nothing was changed."),
                "error",
            )
        return valid

    def create_form(self, obj: t.Any = None) -> t.Any:
        return _with_backup_choices(super().create_form(obj), None)

    def edit_form(self, obj: t.Any = None) -> t.Any:
        return _with_backup_choices(super().edit_form(obj), obj)

    # flask-admin's hooks run as in its own ModelView: ``on_model_change`` / ``on_model_delete`` in
    # the transaction, once the API has validated (and checked) the account, so a refused account
    # reaches no hook; ``after_model_change`` / ``after_model_delete`` once it is committed.

    def create_model(self, form: AccountForm) -> t.Any:  # type: ignore[override]
        ext = extension()
        before = _everyday_before(form)
        try:
            account = ext.add_account(
                password=form["new_password"].data or None,
                before_commit=lambda row: self._on_model_change(form, row, True),
                **form.account_fields(),
            )
        except SMTPAccountsError as err:
            account_refused(form, err)
            return False
        except Exception as err:  # the site's on_model_change refused, as flask-admin reports it
            self._hook_refused(form, err, admin_gettext("Failed to create record. %(error)s", error=str(err)))
            return False
        self._saved(before, account)
        self.after_model_change(form, account, True)
        return account

    def update_model(self, form: AccountForm, model: t.Any) -> bool:  # type: ignore[override]
        ext = extension()
        before = _everyday_before(form)
        try:
            account = ext.update_account(
                model.id,
                password=form["new_password"].data or None,
                before_commit=lambda row: self._on_model_change(form, row, False),
                **form.account_fields(),
            )
        except SMTPAccountsError as err:
            account_refused(form, err)
            return False
        except Exception as err:
            self._hook_refused(form, err, admin_gettext("Failed to update record. %(error)s", error=str(err)))
            return False
        self._saved(before, account)
        self.after_model_change(form, account, False)
        return True

    def delete_model(self, model: t.Any) -> bool:
        try:
            extension().delete_account(model.id, before_commit=self.on_model_delete)
        except LookupError:
            flash(_("The account was not deleted: %(error)s", error=_("There is no such account.")), "error")
            return False
        except SMTPAccountsError as err:
            flash(_("The account was not deleted: %(error)s", error=describe_error(err)), "error")
            return False
        except Exception as err:
            self._hook_refused(None, err, admin_gettext("Failed to delete record. %(error)s", error=str(err)))
            return False
        self.after_model_delete(model)
        return True

    def _saved(self, before: t.Any, account: t.Any) -> None:
        flash(_("The account passed the check."), "success")
        _warn_takeover(before, account)
        _note_reserved_domain(account.sender_email)

    def _hook_refused(self, form: AccountForm | None, err: Exception, failed: str) -> None:
        """A site's hook raised: flask-admin's own handling (its ``ValidationError`` is a message), nothing saved."""
        if form is not None:
            form["new_password"].data = ""
        if not self.handle_view_exception(err):
            flash(failed, "error")
            log.exception("A model hook of the SMTP accounts view failed.")

    # --- signing in with the OAuth2 provider (admin/oauth2.py) -----------------------

    @expose("/oauth2/sign-in/", methods=("POST",))
    def oauth2_sign_in_view(self) -> ResponseReturnValue:
        """The "Sign in with Microsoft / Google" button: check the form, then off to the provider."""
        return oauth2.start(self)

    @expose("/oauth2/callback/")
    def oauth2_callback_view(self) -> ResponseReturnValue:
        """The redirect URL registered with the provider."""
        return oauth2.callback(self)

    # --- toggling ---------------------------------------------------------------

    @expose("/toggle-active/", methods=("POST",))
    def toggle_active_view(self) -> ResponseReturnValue:
        """Switch one account on or off from the list (a POST with a CSRF token)."""
        return_url = get_redirect_target() or self.get_url(".index_view")
        form = RowForm(request.form)
        if not form.validate():
            flash(
                _("The request was refused: the form lacked its security token. Nothing was changed."),
                "error",
            )
            return redirect(return_url)
        self._set_active([form.id.data], None)
        return redirect(return_url)

    @action(
        "delete", lazy_gettext("Delete"), lazy_gettext("Are you sure you want to delete selected records?")
    )
    def action_delete(self, ids: t.Sequence[str]) -> None:
        """flask-admin's bulk delete, given integer ids: PostgreSQL (psycopg 3) refuses ``integer = varchar``."""
        numbers = tuple(number for number in map(parse_id, ids) if number is not None)
        super().action_delete(numbers)

    @action("activate", _l("Activate"))
    def action_activate(self, ids: t.Sequence[str]) -> None:
        self._set_active(ids, True)

    @action("deactivate", _l("Deactivate"))
    def action_deactivate(self, ids: t.Sequence[str]) -> None:
        self._set_active(ids, False)

    def _set_active(self, ids: t.Iterable[t.Any], active: bool | None) -> None:
        """Switching an account on or off changes no connection data, so it is not re-checked."""
        ext = extension()
        for raw in ids:
            try:
                account = ext.get_account(raw)
                before = everyday_of(account.sender_email)
                ext.update_account(
                    account.id, check=False, active=(not account.active) if active is None else active
                )
            except InvalidAccountError as err:
                flash(
                    _(
                        "Account %(id)s was not changed: %(error)s",
                        id=raw,
                        error=field_error(err, ACCOUNT_FIELD_ERRORS),
                    ),
                    "error",
                )
                continue
            except SMTPAccountsError as err:
                flash(
                    _("Account %(id)s was not changed: %(error)s", id=raw, error=describe_error(err)), "error"
                )
                continue
            except LookupError:
                flash(
                    _(
                        "Account %(id)s was not changed: %(error)s",
                        id=raw,
                        error=_("There is no such account."),
                    ),
                    "error",
                )
                continue
            if account.active:
                flash(_("Account %(id)s is active now.", id=account.id), "success")
                _warn_takeover(before, account)
            else:
                flash(_("Account %(id)s is inactive now.", id=account.id), "success")

    # --- test letter ----------------------------------------------------------

    @expose("/test-letter/", methods=("GET", "POST"))
    def test_letter_view(self) -> ResponseReturnValue:
        """Send a test letter through one saved account to an address the admin types."""
        return_url = get_redirect_target() or self.get_url(".index_view")
        ext = extension()
        account_id = parse_id(request.args.get("id"))
        try:
            account = None if account_id is None else ext.get_account(account_id)
        except LookupError:
            account = None
        if account is None:
            flash(_("There is no such account."), "error")
            return redirect(return_url)
        form = TestLetterForm()
        result: CheckResult | None = None
        if request.method == "GET":
            form.recipient.data = ext.settings.test_recipient
        elif form.validate_on_submit():
            result = ext.send_test_letter(account, (form.recipient.data or "").strip())
        elif "csrf_token" in form.errors:
            flash(
                _("The request was refused: the form lacked its security token. Nothing was sent."), "error"
            )
        return self.render(
            self.test_letter_template,
            account=account,
            form=form,
            result=result,
            failure=describe_failure(result) if result is not None and not result.ok else None,
            hint=say(result.hint) if result is not None and result.hint else None,
            reply=server_reply(result) if result is not None else None,
            return_url=return_url,
        )
