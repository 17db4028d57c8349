"""The settings page: every setting with its default, unit and help, saved by ``update_settings``."""

from __future__ import annotations

import typing as t

from flask import flash, redirect, request
from flask_admin import BaseView, expose

from ..errors import InvalidSettingError
from ..validation import validate_settings
from .access import MANAGE_SETTINGS, ProtectedView, extension
from .forms import SettingsForm, default_text, form_value, setting_groups, setting_meta, setting_names
from .i18n import _


class SettingsView(ProtectedView, BaseView):
    """Settings of the extension (the original's General and Sending groups, and the newer ones)."""

    permission = MANAGE_SETTINGS
    template = "smtp_accounts/settings.html"

    @expose("/", methods=("GET", "POST"))
    def index(self) -> t.Any:
        ext = extension()
        if request.method == "POST":
            form = SettingsForm()
            if form.validate_on_submit():
                if self._save(form):
                    flash(_("The settings were saved."), "success")
                    return redirect(self.get_url(".index"))
                flash(_("The settings were not saved: correct the marked fields."), "error")
            else:
                flash(
                    _("The request was refused: the form lacked its security token. Nothing was changed."),
                    "error",
                )
        else:
            current = ext.settings
            form = SettingsForm(data={name: form_value(getattr(current, name)) for name in setting_names()})
        return self.render(
            self.template,
            form=form,
            groups=setting_groups(),
            meta=setting_meta,
            default_text=default_text,
        )

    def _save(self, form: SettingsForm) -> bool:
        """Save all the settings, or none of them, with every refused field marked."""
        values = form.values()
        refused = False
        for name, value in values.items():
            try:
                validate_settings({name: value})
            except InvalidSettingError:
                form[name].errors = [*form[name].errors, refusal(name)]
                refused = True
        if refused:
            return False
        try:
            extension().update_settings(**values)
        except InvalidSettingError as err:
            form[err.field].errors = [*form[err.field].errors, refusal(err.field)]
            return False
        return True


def refusal(name: str) -> str:
    """What to say under a refused setting, in the page's language."""
    meta = setting_meta(name)
    if meta.kind == "int" and meta.low is not None:
        if meta.unit:
            return _(
                "A whole number from %(low)s to %(high)s (%(unit)s).",
                low=meta.low,
                high=meta.high,
                unit=meta.unit,
            )
        return _("A whole number from %(low)s to %(high)s.", low=meta.low, high=meta.high)
    if meta.kind == "choice":
        return _("Choose one of the listed options.")
    if meta.kind == "email":
        return _("Enter a valid email address, or leave it empty.")
    if meta.kind == "bool":
        return _("Yes or no.")
    return _("This value cannot be saved.")
