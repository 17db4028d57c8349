"""The alerts page: channels (add, remove, send a test alert) and which events alert how often.

A thin layer over :class:`~flask_smtp_accounts.alerts.Alerts`. A webhook's
URL is typed once and never shown again: the page names it by its host,
and the field stays blank (which keeps the stored URL).
"""

from __future__ import annotations

from flask import abort, flash, redirect, request
from flask.typing import ResponseReturnValue
from flask_admin import BaseView, expose
from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectField, StringField

from ..alert_channels import KINDS, ChannelInfo
from ..alert_formats import FORMAT_CHOICES
from ..alerts import EVENTS
from ..errors import AlertDeliveryError, InvalidAlertError
from .access import MANAGE_SETTINGS, ProtectedView, extension
from .forms import _choices
from .i18n import _, _l

EVENT_WORDS = {
    "letter_undelivered": _l("A letter was not delivered through its account or any backup"),
    "account_cooled_down": _l("An account failed to connect and cools down"),
    "oauth_token_refused": _l("An OAuth2 token was refused (sign in again)"),
    "queue_backlog": _l("A letter waits in the retry queue too long"),
    "quota_reached": _l("An account reached its sending quota (when quotas are set)"),
}
KIND_WORDS = {"email": _l("Email"), "webhook": _l("Webhook")}
FORMAT_WORDS = {
    "json": _l("JSON (generic)"),
    "slack": "Slack",
    "teams": "Microsoft Teams",
    "discord": "Discord",
}
FIELD_ERRORS = {
    "url": _l("An https:// address of the webhook."),
    "recipients": _l("One or more email addresses, separated by commas."),
    "account_id": _l("Choose one of the listed accounts."),
    "format": _l("Choose one of the listed options."),
    "kind": _l("Choose one of the listed options."),
    "throttle_minutes": _l("A whole number of minutes from 0 to 10080."),
    "threshold_minutes": _l("A whole number of minutes from 1 to 10080."),
}


class ChannelForm(FlaskForm):
    """A new channel; the webhook URL field is write-only."""

    kind = SelectField(_l("Kind"), choices=_choices((k, KIND_WORDS[k]) for k in KINDS))
    url = PasswordField(
        _l("Webhook URL"), description=_l("Stored encrypted and never shown again; only its host is.")
    )
    format = SelectField(_l("Payload"), choices=_choices((f, FORMAT_WORDS[f]) for f in FORMAT_CHOICES))
    recipients = StringField(_l("Email to"), description=_l("Addresses, separated by commas."))
    account = SelectField(_l("Send the email through"), choices=[], validate_choice=False)


class ActionForm(FlaskForm):
    """A button that changes something (remove, test, save events): the security token only."""


class AlertsView(ProtectedView, BaseView):
    """Alerts: who hears about failures, and how often; needs ``manage_settings``."""

    permission = MANAGE_SETTINGS
    template = "smtp_accounts/alerts.html"

    def _page(
        self, form: ChannelForm | None = None, editing: ChannelInfo | None = None
    ) -> ResponseReturnValue:
        ext = extension()
        accounts = [(str(a.id), a.label) for a in ext.list_accounts()]
        form = form or ChannelForm()
        form.account.choices = _choices([("", _("Flask-Mail's own settings")), *accounts])
        if editing is not None and editing.kind == "webhook":
            form.url.description = _(
                "Leave it blank to keep the stored URL (of %(host)s); it is never shown again.",
                host=editing.url_host,
            )
        return self.render(
            self.template,
            editing=editing,
            channels=ext.alerts.channels(),
            events=ext.alerts.event_settings(),
            form=form,
            action_form=ActionForm(),
            event_words=EVENT_WORDS,
            kind_words=KIND_WORDS,
            format_words=FORMAT_WORDS,
            account_labels=dict(accounts),
        )

    @expose("/")
    def index(self) -> ResponseReturnValue:
        """The page; ``?edit=ID`` puts a channel into the form (its webhook URL left blank)."""
        edit = request.args.get("edit", "")
        if not edit.isdigit():
            return self._page()
        try:
            channel = extension().alerts.channel(int(edit))
        except LookupError:
            abort(404)
        data = {
            "kind": channel.kind,
            "format": channel.format or "json",
            "recipients": ", ".join(channel.recipients),
            "account": str(channel.account_id or ""),
        }
        return self._page(ChannelForm(data=data), editing=channel)

    @expose("/channels/<int:channel_id>/edit", methods=("POST",))
    def edit(self, channel_id: int) -> ResponseReturnValue:
        """Change a channel; a blank URL keeps the stored one."""
        alerts = extension().alerts
        try:
            channel = alerts.channel(channel_id)
        except LookupError:
            abort(404)
        form = ChannelForm()
        if not form.validate_on_submit():
            return self._refusal()
        account = form.account.data or ""
        try:
            alerts.update_channel(
                channel_id,
                url=form.url.data or None,
                format=form.format.data or "json",
                recipients=form.recipients.data or "",
                account_id=int(account) if account.isdigit() else None,
            )
        except InvalidAlertError as err:
            return self._refused_field(form, err, channel)
        flash(_("The alert channel was saved."), "success")
        return redirect(self.get_url(".index"))

    @expose("/channels/add", methods=("POST",))
    def add(self) -> ResponseReturnValue:
        form = ChannelForm()
        if not form.validate_on_submit():
            return self._refusal()
        account = form.account.data or ""
        try:
            extension().alerts.add_channel(
                form.kind.data or "",
                url=form.url.data or None,
                format=form.format.data or "json",
                recipients=form.recipients.data or "",
                account_id=int(account) if account.isdigit() else None,
            )
        except InvalidAlertError as err:
            return self._refused_field(form, err)
        flash(_("The alert channel was added."), "success")
        return redirect(self.get_url(".index"))

    @expose("/channels/<int:channel_id>/remove", methods=("POST",))
    def remove(self, channel_id: int) -> ResponseReturnValue:
        if self._refused():
            return redirect(self.get_url(".index"))
        try:
            extension().alerts.remove_channel(channel_id)
        except LookupError:
            abort(404)
        flash(_("The alert channel was removed."), "success")
        return redirect(self.get_url(".index"))

    @expose("/channels/<int:channel_id>/test", methods=("POST",))
    def test(self, channel_id: int) -> ResponseReturnValue:
        if self._refused():
            return redirect(self.get_url(".index"))
        alerts = extension().alerts
        try:
            channel = alerts.channel(channel_id)
            alerts.send_test(channel_id)
        except LookupError:
            abort(404)
        except AlertDeliveryError as err:
            flash(_("The test alert was not delivered: %(reason)s", reason=err.message), "error")
        else:
            flash(_("A test alert was sent to %(target)s.", target=channel.target), "success")
        return redirect(self.get_url(".index"))

    @expose("/events", methods=("POST",))
    def events(self) -> ResponseReturnValue:
        if self._refused():
            return redirect(self.get_url(".index"))
        alerts = extension().alerts
        try:
            for event in EVENTS:
                alerts.set_event(
                    event,
                    enabled=request.form.get(f"{event}-enabled") == "y",
                    throttle_minutes=request.form.get(f"{event}-throttle", ""),
                    threshold_minutes=request.form.get(f"{event}-threshold") or None,
                )
        except InvalidAlertError as err:
            flash(
                _(
                    "The events were not all saved: %(reason)s",
                    reason=FIELD_ERRORS.get(err.field, err.message),
                ),
                "error",
            )
        else:
            flash(_("The alert events were saved."), "success")
        return redirect(self.get_url(".index"))

    def _refused_field(
        self, form: ChannelForm, err: InvalidAlertError, editing: ChannelInfo | None = None
    ) -> ResponseReturnValue:
        """The form again with the refused field marked, and the typed URL not echoed."""
        field = getattr(form, "account" if err.field == "account_id" else err.field, None)
        if field is not None:
            field.errors = [*field.errors, str(FIELD_ERRORS.get(err.field, err.message))]
        flash(_("The channel was not saved: correct the marked field."), "error")
        form.url.data = ""
        return self._page(form, editing)

    def _refusal(self) -> ResponseReturnValue:
        """Back to the page, saying that a request without the form's security token changed nothing."""
        flash(_("The request was refused: the form lacked its security token. Nothing was changed."), "error")
        return redirect(self.get_url(".index"))

    def _refused(self) -> bool:
        if ActionForm().validate_on_submit():
            return False
        self._refusal()
        return True
