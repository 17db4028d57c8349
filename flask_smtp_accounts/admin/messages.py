"""The message log pages: the list with its filters, one letter, and the resend action.

Reading needs ``view_logs``; resending also needs ``manage_accounts``. The
pages read through the Python API (``messages``, ``get_message``,
``resend_message``, ``account_health``), which also refuses to resend a
letter a server already accepted.
"""

from __future__ import annotations

import typing as t
from datetime import datetime, timedelta

from flask import Response, abort, flash, redirect, request, stream_with_context
from flask.typing import ResponseReturnValue
from flask_admin import BaseView, expose
from flask_babel import format_datetime
from flask_wtf import FlaskForm
from wtforms import StringField

from ..errors import DeliveryError, InvalidAccountError, MessageLogError, ResendError
from ..ids import parse_id
from ..message_export import FORMATS
from ..message_info import (
    CANCELLED,
    CLAIMED,
    FAILED,
    INTERRUPTED,
    QUEUED,
    SENDING,
    SENT,
    SUPPRESSED,
    MessageInfo,
)
from .access import MANAGE_ACCOUNTS, VIEW_LOGS, ProtectedView, allowed, extension
from .i18n import RULES, _, _l, say, stage_name

#: Letters per page: a screenful an operator scans, small enough that the page stays quick.
PAGE_SIZE = 50
#: The query string arguments of the list's filters: the only ones its page links carry on.
FILTER_ARGS = ("status", "account", "address", "q", "since", "until")

STATUS_WORDS = {
    SENT: _l("sent"),
    SUPPRESSED: _l("suppressed"),
    FAILED: _l("failed"),
    QUEUED: _l("queued"),
    CLAIMED: _l("taken by a worker"),
    SENDING: _l("being sent"),
    INTERRUPTED: _l("interrupted: outcome unknown"),
    CANCELLED: _l("cancelled"),
}
STATUS_STYLES = {
    SENT: "success",
    SUPPRESSED: "secondary",
    FAILED: "danger",
    QUEUED: "warning",
    CLAIMED: "info",
    SENDING: "info",
    INTERRUPTED: "dark",
    CANCELLED: "secondary",
}


class ResendForm(FlaskForm):
    """Resending a letter; the letter is named by the URL."""


class ResendCopyForm(FlaskForm):
    """Sending a logged letter again as a new one; blank: to its own recipients."""

    recipient = StringField(_l("Send a copy to"))


def _date_arg(name: str) -> datetime | None:
    raw = (request.args.get(name) or "").strip()
    if not raw:
        return None
    try:
        return datetime.strptime(raw, "%Y-%m-%d")
    except ValueError:
        flash(_("Dates are written as YYYY-MM-DD; %(value)s was ignored.", value=raw), "error")
        return None


def _account_arg() -> int | None:
    raw = (request.args.get("account") or "").strip()
    if not raw:
        return None
    account_id = parse_id(raw)
    if account_id is None:
        flash(_("An account is chosen by its number; %(value)s was ignored.", value=raw), "error")
    return account_id


def _page_arg() -> int:
    """The page number; a page number no database could reach is a page that does not exist."""
    raw = request.args.get("page")
    if raw is None:
        return 1
    page = parse_id(raw)
    if page is None or parse_id(page * PAGE_SIZE) is None:
        abort(404)
    return max(page, 1)


def _filters() -> dict[str, t.Any]:
    """The list's filters from the query string, checked; bad values are dropped."""
    args = request.args
    status = args.get("status") or None
    if status not in STATUS_WORDS:
        status = None
    return {
        "status": status,
        "account_id": _account_arg(),
        "address": (args.get("address") or "").strip()[:254] or None,
        "search": (args.get("q") or "").strip()[:998] or None,
        "since": _date_arg("since"),
        "until": _date_arg("until"),
        "page": _page_arg(),
    }


def _api_filters(filters: dict[str, t.Any]) -> dict[str, t.Any]:
    """The list's filters as ``messages()`` and ``export_messages()`` take them: the end date counts whole."""
    until = filters["until"]
    # Letters of the whole last day; 9999-12-31 has no next day, and needs no upper bound.
    until = until + timedelta(days=1) if until and until < datetime.max - timedelta(days=1) else None
    return {**{k: v for k, v in filters.items() if k != "page"}, "until": until}


def describe_error(message: MessageInfo) -> str:
    """The last error of a letter, in the page's language where it can be."""
    return _failure(message.error, message.error_stage, message.error_code, message.error_reply)


def describe_attempt(attempt: t.Mapping[str, t.Any]) -> str:
    """Why one try of a letter failed (``""`` for a try that went through)."""
    return _failure(attempt.get("error"), attempt.get("stage"), attempt.get("code"), attempt.get("reply"))


def _failure(error: str | None, stage: str | None, code: int | None, reply: str | None) -> str:
    """The stage and the server's reply in the page's language; without a reply, the error as it was recorded."""
    if not error:
        return ""
    if code:
        return _(
            "Failed at the %(stage)s stage. The server replied: %(reply)s",
            stage=stage_name(stage),
            reply=f"{code} {reply or ''}".strip(),
        )
    return _("Failed at the %(stage)s stage: %(details)s", stage=stage_name(stage), details=error)


def route_text(message: MessageInfo) -> str:
    """The account that carried the letter, saying so when it was a backup."""
    if message.account_id is None:
        return _("Flask-Mail default")
    if message.chosen_account_id and message.chosen_account_id != message.account_id:
        return _(
            "%(account)s (backup of account %(chosen)s)",
            account=message.route,
            chosen=message.chosen_account_id,
        )
    return message.route


class MessagesView(ProtectedView, BaseView):
    """Message log: every letter sent while routing is on, newest first."""

    permission = VIEW_LOGS
    list_template = "smtp_accounts/messages.html"
    detail_template = "smtp_accounts/message_view.html"

    def _common(self) -> dict[str, t.Any]:
        return {
            "status_words": STATUS_WORDS,
            "status_styles": STATUS_STYLES,
            "route_text": route_text,
            "describe_error": describe_error,
            "describe_attempt": describe_attempt,
            "when": lambda moment: format_datetime(moment) if moment else "",
            "may_resend": allowed(MANAGE_ACCOUNTS),
            "resend_form": ResendForm(),
            "copy_form": ResendCopyForm(),
        }

    @expose("/")
    def index(self) -> ResponseReturnValue:
        ext = extension()
        filters = _filters()
        page = ext.messages(**_api_filters(filters), page=filters["page"], per_page=PAGE_SIZE)
        accounts = [(a.id, a.label) for a in ext.list_accounts()]
        args = {k: v for k, v in request.args.items() if k in FILTER_ARGS and v}
        return self.render(
            self.list_template,
            page=page,
            accounts=accounts,
            filters=request.args,
            page_url=lambda number: self.get_url(".index", page=number, **args),
            export_url=lambda fmt: self.get_url(".export", fmt=fmt, **args),
            **self._common(),
        )

    @expose("/export.<fmt>")
    def export(self, fmt: str) -> ResponseReturnValue:
        """The filtered rows as a CSV or JSON download, streamed as they are read."""
        if fmt not in FORMATS:
            abort(404)
        pieces = extension().export_messages(fmt, **_api_filters(_filters()))
        return Response(
            stream_with_context(pieces),
            mimetype=FORMATS[fmt],
            headers={
                "Content-Disposition": f"attachment; filename=message-log.{fmt}",
                "Cache-Control": "no-store",
            },
        )

    @expose("/<smtp_accounts_id:record_id>/")
    def view(self, record_id: int) -> ResponseReturnValue:
        try:
            message = extension().get_message(record_id)
        except LookupError:
            abort(404)
        return self.render(self.detail_template, message=message, rules=RULES, **self._common())

    @expose("/<smtp_accounts_id:record_id>/resend", methods=("POST",))
    def resend(self, record_id: int) -> ResponseReturnValue:
        if not allowed(MANAGE_ACCOUNTS):
            return self.refuse(MANAGE_ACCOUNTS)
        if not ResendForm().validate_on_submit():
            flash(
                _("The request was refused: the form lacked its security token. Nothing was sent."), "error"
            )
            return redirect(self.get_url(".view", record_id=record_id))
        ext = extension()
        try:
            message = ext.resend_message(record_id)
        except LookupError:
            abort(404)
        except ResendError as err:
            flash(_("The letter was not sent again: %(reason)s", reason=say(err.reason)), "error")
        except DeliveryError:
            flash(_("The letter was sent again but not delivered."), "error")
        except MessageLogError as err:
            flash(_("The letter was not sent again: %(reason)s", reason=str(err)), "error")
        else:
            flash(
                _("The letter was sent again and delivered through %(route)s.", route=route_text(message)),
                "success",
            )
        return redirect(self.get_url(".view", record_id=record_id))

    @expose("/<smtp_accounts_id:record_id>/copy", methods=("POST",))
    def resend_copy(self, record_id: int) -> ResponseReturnValue:
        """Send a logged letter again as a new letter, to another address or to its own recipients."""
        if not allowed(MANAGE_ACCOUNTS):
            return self.refuse(MANAGE_ACCOUNTS)
        form = ResendCopyForm()
        if not form.validate_on_submit():
            flash(
                _("The request was refused: the form lacked its security token. Nothing was sent."), "error"
            )
            return redirect(self.get_url(".view", record_id=record_id))
        address = (form.recipient.data or "").strip()
        try:
            copy = extension().resend_copy(record_id, [address] if address else None)
        except LookupError:
            abort(404)
        except InvalidAccountError:
            flash(
                _("The letter was not sent: %(address)s is not a valid email address.", address=address),
                "error",
            )
        except ResendError as err:
            flash(_("The letter was not sent again: %(reason)s", reason=say(err.reason)), "error")
        except DeliveryError as err:
            flash(_("The copy was not delivered; its entry says why."), "error")
            return redirect(self.get_url(".view", record_id=err.record_id or record_id))
        else:
            flash(_("A copy was sent and delivered through %(route)s.", route=route_text(copy)), "success")
            return redirect(self.get_url(".view", record_id=copy.id))
        return redirect(self.get_url(".view", record_id=record_id))
