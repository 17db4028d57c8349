"""The outbox page: per account, letters queued, sending, sent and failed, the rate and the time left.

A thin face of the outbox API (``outbox_status``, ``pause_queue``,
``resume_queue``, ``cancel_queued``). Reading needs ``view_outbox``;
pausing, resuming and cancelling need ``manage_outbox`` and come as POSTs
with the form's security token. Cancelling letters cannot be undone, so it
takes two steps: a page that says how many letters of which account go,
then its button.
"""

from __future__ import annotations

import typing as t
from datetime import timedelta

from flask import flash, redirect, request
from flask.typing import ResponseReturnValue
from flask_admin import BaseView, expose
from flask_babel import format_decimal, format_timedelta
from flask_wtf import FlaskForm
from wtforms import HiddenField

from ..errors import SMTPAccountsError
from ..ids import parse_id
from ..labels import DEFAULT_ROUTE
from .access import MANAGE_OUTBOX, VIEW_OUTBOX, ProtectedView, allowed, extension
from .i18n import _, describe_error

if t.TYPE_CHECKING:
    from ..outbox_status import OutboxLine

#: The ``account`` value of the cancel forms that means every account's queued letters.
ALL = "all"


class OutboxActionForm(FlaskForm):
    """One button on the page (pause, resume, cancel): the account it acts on and the security token."""

    account = HiddenField()


def label_text(line: OutboxLine) -> str:
    """The account's label; Flask-Mail's own route (account 0) in the page's language."""
    return _(DEFAULT_ROUTE) if line.account_id == 0 else line.label


def rate_text(per_minute: float) -> str:
    """Letters a minute, as the page's language writes a number."""
    return str(format_decimal(round(per_minute, 1)))


def time_left_text(seconds: float | None) -> str:
    """``about 3 minutes``; a dash when nothing is queued or nothing was sent lately to measure by."""
    if not seconds:
        return "–"
    return str(_("about %(time)s", time=format_timedelta(timedelta(seconds=seconds), threshold=1)))


class OutboxView(ProtectedView, BaseView):
    """Outbox: the queue per account, and its pause, resume and cancel buttons."""

    permission = VIEW_OUTBOX
    template = "smtp_accounts/outbox.html"
    confirm_template = "smtp_accounts/outbox_cancel.html"

    @expose("/")
    def index(self) -> ResponseReturnValue:
        return self.render(
            self.template,
            lines=extension().outbox_status(),
            label_text=label_text,
            rate_text=rate_text,
            time_left_text=time_left_text,
            may_manage=allowed(MANAGE_OUTBOX),
            action_form=OutboxActionForm(),
            all_accounts=ALL,
        )

    @expose("/pause/", methods=("POST",))
    def pause(self) -> ResponseReturnValue:
        return self._switch(paused=True)

    @expose("/resume/", methods=("POST",))
    def resume(self) -> ResponseReturnValue:
        return self._switch(paused=False)

    def _switch(self, *, paused: bool) -> ResponseReturnValue:
        if not allowed(MANAGE_OUTBOX):
            return self.refuse(MANAGE_OUTBOX)
        form = OutboxActionForm()
        account_id = parse_id(form.account.data or "") if _token_valid(form) else None
        if account_id is None:
            return redirect(self.get_url(".index"))
        ext = extension()
        try:
            (ext.pause_queue if paused else ext.resume_queue)(account_id)
        except SMTPAccountsError as err:
            flash(_("The queue was not changed: %(error)s", error=describe_error(err)), "error")
        else:
            if paused:
                flash(_("The queue of account %(id)s is paused: its letters wait.", id=account_id), "success")
            else:
                flash(_("The queue of account %(id)s goes on.", id=account_id), "success")
        return redirect(self.get_url(".index"))

    @expose("/cancel/", methods=("GET", "POST"))
    def cancel(self) -> ResponseReturnValue:
        """GET: what would be cancelled, and the button; POST (that button): cancel the queued letters."""
        if not allowed(MANAGE_OUTBOX):
            return self.refuse(MANAGE_OUTBOX)
        form = OutboxActionForm()
        if request.method == "POST":
            which = form.account.data
            account_id = parse_id(which or "")
            if _token_valid(form) and (which == ALL or account_id is not None):
                count = extension().cancel_queued(account_id=account_id)
                flash(_("Queued letters cancelled: %(count)s.", count=count), "success")
            return redirect(self.get_url(".index"))
        which = request.args.get("account", ALL)
        account_id = parse_id(which)
        if which != ALL and account_id is None:
            return redirect(self.get_url(".index"))
        lines = [
            line
            for line in extension().outbox_status()
            if account_id is None or line.account_id == account_id
        ]
        if not lines:
            flash(_("There is no such account."), "error")
            return redirect(self.get_url(".index"))
        form.account.data = which
        return self.render(
            self.confirm_template,
            form=form,
            every_account=account_id is None,
            label=label_text(lines[0]),
            queued=sum(line.queued for line in lines),
        )


def _token_valid(form: OutboxActionForm) -> bool:
    """Whether the POST carries the form's security token; says so on the page when it does not."""
    if form.validate_on_submit():
        return True
    flash(_("The request was refused: the form lacked its security token. Nothing was changed."), "error")
    return False
