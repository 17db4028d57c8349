"""The forms of the admin pages, each field with the help text the original shows as a tooltip.

The forms only collect input; what is valid is decided by the Python API
(``validation.py``), so that the admin, the command line and code refuse
the same things. The password field is write-only: it is never filled in.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from flask_admin.form import SecureForm
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
)
from wtforms.validators import InputRequired, Optional
from wtforms.widgets import NumberInput

from ..account_fields import ACCOUNT_SPECS, OAUTH_FIELDS, OAUTH_SECRETS
from ..declarations import Declared
from ..ids import parse_id
from ..settings import DEFAULT_SETTINGS, SETTINGS
from .i18n import _l
from .presets import preset_choices
from .sign_in_field import sign_in_field

try:  # WTForms 3.3 wants SelectChoice objects; older ones take (value, label) pairs.
    from wtforms import SelectChoice  # type: ignore[attr-defined]  # types-WTForms describes WTForms 3.2
except ImportError:  # pragma: no cover - WTForms < 3.3
    SelectChoice = None


def _choices(pairs: t.Iterable[tuple[str, t.Any]]) -> list[t.Any]:
    return [SelectChoice(value, label) if SelectChoice else (value, label) for value, label in pairs]


class AccountChoiceField(SelectMultipleField):
    """Other accounts, chosen from a list; the view fills the choices. Blank submissions choose none."""

    def process_formdata(self, valuelist: list[t.Any]) -> None:
        ids = [parse_id(value) for value in valuelist if str(value).strip()]
        if None in ids:
            self.data = []
            raise ValueError(self.gettext("Invalid choice(s): one or more data inputs could not be coerced."))
        self.data = ids

    def pre_validate(self, form: t.Any) -> None:
        """The Python API decides which backups are valid, with its own message."""


def _secret_field(label: t.Any, description: t.Any) -> PasswordField:
    """A write-only secret: never filled in; left blank, the stored one is kept."""
    return PasswordField(label, description=description)


def _account_field(field: Declared) -> t.Any:
    """The form field of a declared account field: its label, help, default and input."""
    label, description = _l(field.label), _l(field.help)
    default = field.default if field.form_default is None else field.form_default
    if field.check == "backup_ids":
        return AccountChoiceField(label, coerce=int, choices=[], description=description)
    if field.type is bool:
        return BooleanField(label, default=default, description=description)
    if field.choices:
        choices = _choices((value, _l(text)) for value, text in field.choices)
        return SelectField(
            label, default=default, validate_choice=False, choices=choices, description=description
        )
    # A blank number is the field's default (the Python API says so); a required one must be given.
    required = [InputRequired()] if field.required or field.form_required else [Optional()]
    if field.type is int:
        widget = NumberInput(min=field.minimum, max=field.maximum)
        return IntegerField(
            label, default=default, validators=required, widget=widget, description=description
        )
    return StringField(label, validators=required if field.required else [], description=description)


#: The fields of the account form that are no account field: a provider's preset, and the write-only secrets.
EXTRA_FIELDS: dict[str, t.Callable[[], t.Any]] = {
    "preset": lambda: SelectField(
        _l("Provider"),
        default="",
        validate_choice=False,
        choices=_choices(preset_choices()),
        description=_l("Fills in the server, port, security and authorization of a well-known provider."),
    ),
    "region": lambda: SelectField(
        _l("Region"),
        default="",
        validate_choice=False,
        choices=[],
        description=_l("The provider's region: the server's address depends on it."),
    ),
    "new_password": lambda: _secret_field(
        _l("Password"),
        _l("Stored encrypted and never shown. When editing, leave it blank to keep the stored password."),
    ),
    "oauth_client_secret": lambda: _secret_field(
        _l("Client secret"),
        _l("Stored encrypted and never shown. When editing, leave it blank to keep the stored one."),
    ),
    "oauth_refresh_token": lambda: _secret_field(
        _l("Refresh token"),
        _l(
            "Delegated grant: the token from signing in. Stored encrypted and never shown; when editing,"
            " leave it blank to keep the stored one."
        ),
    ),
    "oauth_sign_in": sign_in_field,
}
#: The order of the form's fields; an account field declared but not placed here comes last.
ACCOUNT_FORM_LAYOUT = (
    "preset",
    "region",
    "active",
    "sender_name",
    "sender_email",
    "host",
    "port",
    "security",
    "verify_tls",
    "pipelining",
    "auth",
    "login",
    "new_password",
    "oauth_provider",
    "oauth_flow",
    "oauth_tenant",
    "oauth_client_id",
    "oauth_client_secret",
    "oauth_refresh_token",
    "oauth_sign_in",
    "oauth_scope",
    "oauth_token_url",
    "oauth_authorize_url",
    "backup_ids",
    "max_connections",
    "limit_per_minute",
    "limit_per_hour",
    "limit_per_day",
    "recipient_limit_per_day",
    "over_limit",
)
_ACCOUNT_SPECS = {field.name: field for field in ACCOUNT_SPECS}
_FORM_ORDER = tuple(dict.fromkeys((*ACCOUNT_FORM_LAYOUT, *_ACCOUNT_SPECS)))
#: Write-only fields besides the password: never filled in, blank keeps the stored value.
SECRET_FIELDS = tuple(OAUTH_SECRETS)
OAUTH_FORM_FIELDS = (*OAUTH_FIELDS, *OAUTH_SECRETS)
#: The account fields of the form, as the Python API takes them.
ACCOUNT_FORM_FIELDS = tuple(name for name in _FORM_ORDER if name in _ACCOUNT_SPECS or name in OAUTH_SECRETS)


class AccountForm(SecureForm):
    """An SMTP account. ``new_password`` is the only way a password comes in."""

    def account_fields(self) -> dict[str, t.Any]:
        """The submitted account fields, as the Python API takes them.

        A blank secret is left out (the stored one is kept); the OAuth2
        fields go only with OAuth2 authorization.
        """
        oauth = self["auth"].data == "oauth2"
        return {
            name: self[name].data
            for name in ACCOUNT_FORM_FIELDS
            if not (name in SECRET_FIELDS and not self[name].data)
            and (oauth or name not in OAUTH_FORM_FIELDS)
        }


# WTForms orders fields by when they were made: they are made here, in the layout's order.
for _name in _FORM_ORDER:
    setattr(
        AccountForm,
        _name,
        _account_field(_ACCOUNT_SPECS[_name]) if _name in _ACCOUNT_SPECS else EXTRA_FIELDS[_name](),
    )


class RowForm(SecureForm):
    """A one-button form on a row of the accounts list (toggle active)."""

    id = HiddenField(validators=[InputRequired()])


class TestLetterForm(FlaskForm):
    recipient = StringField(
        _l("Send the test letter to"),
        validators=[InputRequired()],
        description=_l("Defaults to the test recipient of the settings."),
    )


class PreviewForm(FlaskForm):
    sender = StringField(
        _l("From address"),
        validators=[InputRequired()],
        description=_l("An address such as hello@example.com, or a name and an address as in a From header."),
    )
    bulk = BooleanField(
        _l("Bulk letter (newsletter)"),
        description=_l("Letters with List-Unsubscribe or Precedence: bulk, or sent inside bulk_sending()."),
    )


class LogDeleteForm(FlaskForm):
    """Deleting a log; the log is named by the URL (account id and kind)."""


@dataclass(frozen=True)
class SettingMeta:
    """How the settings page shows one setting (made from its declaration): label, help, unit, input."""

    label: t.Any
    help: t.Any
    group: t.Any
    #: ``bool``, ``int``, ``choice`` or ``email``.
    kind: str
    unit: t.Any = None
    low: int | None = None
    high: int | None = None
    choices: tuple[tuple[str, t.Any], ...] = ()


def _setting_kind(setting: Declared) -> str:
    if setting.type is bool:
        return "bool"
    if setting.choices:
        return "choice"
    if setting.type is int:
        return "int"
    return "email" if setting.check == "email_or_empty" else "text"


def _setting_meta(setting: Declared) -> SettingMeta:
    return SettingMeta(
        _l(setting.label),
        _l(setting.help),
        _l(setting.group),
        _setting_kind(setting),
        _l(setting.unit) if setting.unit else None,
        setting.minimum,
        setting.maximum,
        tuple((value, _l(text)) for value, text in setting.choices),
    )


#: Every setting the page shows, in the order of its declaration.
SETTINGS_META: dict[str, SettingMeta] = {setting.name: _setting_meta(setting) for setting in SETTINGS}


def setting_names() -> tuple[str, ...]:
    """The settings on the page, in its order."""
    return tuple(SETTINGS_META)


def setting_meta(name: str) -> SettingMeta:
    """The page's description of a setting."""
    return SETTINGS_META[name]


def _setting_field(meta: SettingMeta) -> t.Any:
    if meta.kind == "bool":
        return BooleanField(meta.label, description=meta.help)
    if meta.kind == "choice":
        return SelectField(
            meta.label, choices=_choices(meta.choices), validate_choice=False, description=meta.help
        )
    if meta.kind == "int":
        return StringField(meta.label, widget=NumberInput(min=meta.low, max=meta.high), description=meta.help)
    return StringField(meta.label, description=meta.help)


class SettingsForm(FlaskForm):
    """Every setting, built from :data:`SETTINGS_META`. Values are checked by ``validate_settings``."""

    def values(self) -> dict[str, t.Any]:
        """The submitted settings, as ``update_settings`` takes them."""
        return {name: self[name].data for name in setting_names()}


for _name in setting_names():
    setattr(SettingsForm, _name, _setting_field(setting_meta(_name)))


def setting_groups() -> list[tuple[t.Any, list[str]]]:
    """The settings in their groups (fieldsets), in page order."""
    groups: dict[str, list[str]] = {}
    for setting in SETTINGS:
        groups.setdefault(setting.group, []).append(setting.name)
    return [(_l(group), names) for group, names in groups.items()]


def default_text(name: str) -> str:
    """How the default of a setting reads on the page: "10 s", "on", "day"."""
    meta = setting_meta(name)
    value = getattr(DEFAULT_SETTINGS, name)
    if isinstance(value, bool):
        return str(_l("on") if value else _l("off"))
    if meta.kind == "choice":
        return str(dict(meta.choices).get(str(value), value))
    if value == "":
        return str(_l("not set"))
    return f"{value} {meta.unit}" if meta.unit else str(value)


def form_value(value: t.Any) -> t.Any:
    """A stored setting as its form field holds it."""
    return value if isinstance(value, bool) else str(value)
