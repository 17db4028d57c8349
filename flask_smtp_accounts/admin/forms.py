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
from wtforms.validators import InputRequired
from wtforms.widgets import NumberInput

from ..extension import ACCOUNT_FIELDS
from ..ids import parse_id
from ..settings import DEFAULT_SETTINGS, SETTING_NAMES
from .i18n import AUTH, SECURITY, _l
from .oauth2 import sign_in_field
from .presets import preset_choices

try:  # WTForms 3.3 wants SelectChoice objects; older ones take (value, label) pairs.
    from wtforms import SelectChoice
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


class AccountForm(SecureForm):
    """An SMTP account. ``new_password`` is the only way a password comes in."""

    preset = SelectField(
        _l("Provider"),
        default="",
        validate_choice=False,
        choices=_choices(preset_choices()),
        description=_l("Fills in the server, port, security and authorization of a well-known provider."),
    )
    region = SelectField(
        _l("Region"),
        default="",
        validate_choice=False,
        choices=[],
        description=_l("The provider's region: the server's address depends on it."),
    )
    active = BooleanField(
        _l("Active"),
        default=True,
        description=_l("An inactive account takes no part in choosing the account for a letter."),
    )
    sender_name = StringField(
        _l("Sender name"),
        description=_l(
            "Put into a letter only when the letter has no sender name of its own. For newsletters,"
            " the account whose sender name equals the letter's is chosen."
        ),
    )
    sender_email = StringField(
        _l("Sender email"),
        validators=[InputRequired()],
        description=_l("Letters whose From address is this email go through this account."),
    )
    host = StringField(
        _l("Mail server address"),
        validators=[InputRequired()],
        description=_l("The SMTP server's host name, for example smtp.yandex.ru."),
    )
    port = IntegerField(
        _l("Mail server port"),
        default=587,
        validators=[InputRequired()],
        widget=NumberInput(min=1, max=65535),
        description=_l("Usually 587 with STARTTLS, 465 with SSL, 25 without encryption."),
    )
    security = SelectField(
        _l("Connection security"),
        default="starttls",
        validate_choice=False,
        choices=_choices(
            [("starttls", SECURITY["starttls"]), ("ssl", SECURITY["ssl"]), ("none", SECURITY["none"])]
        ),
        description=_l(
            "STARTTLS: the connection is switched to TLS before logging in; a server that does not offer it"
            " is refused. SSL: encrypted from the first byte. None: only for a server on a trusted network."
        ),
    )
    verify_tls = BooleanField(
        _l("Verify the server's certificate"),
        default=True,
        description=_l("Turn off only for a server with a self-signed certificate that you trust."),
    )
    pipelining = BooleanField(
        _l("Pipeline commands"),
        default=True,
        description=_l(
            "When the server offers PIPELINING, send MAIL, RCPT and DATA in one go: a letter waits two"
            " round trips instead of four. Turn off only for a server that mishandles it."
        ),
    )
    auth = SelectField(
        _l("Authorization"),
        default="login",
        validate_choice=False,
        choices=_choices([("login", AUTH["login"]), ("oauth2", AUTH["oauth2"]), ("none", AUTH["none"])]),
        description=_l(
            "How the account logs in: with a password, or with OAuth2 access tokens (Microsoft 365, Google),"
            " or not at all."
        ),
    )
    login = StringField(
        _l("Login"),
        description=_l("Usually the full mailbox address; with OAuth2, the mailbox the token may send as."),
    )
    new_password = PasswordField(
        _l("Password"),
        description=_l(
            "Stored encrypted and never shown. When editing, leave it blank to keep the stored password."
        ),
    )
    oauth_provider = SelectField(
        _l("OAuth2 provider"),
        default="microsoft",
        validate_choice=False,
        choices=_choices(
            [
                ("microsoft", _l("Microsoft 365")),
                ("google", _l("Google")),
                ("custom", _l("Other (own endpoints)")),
            ]
        ),
        description=_l("Who issues the access tokens."),
    )
    oauth_flow = SelectField(
        _l("OAuth2 grant"),
        default="delegated",
        validate_choice=False,
        choices=_choices(
            [("delegated", _l("Delegated: a person signed in once")), ("app", _l("App-only (Microsoft)"))]
        ),
        description=_l(
            "Delegated: the refresh token a person got by signing in once. App-only: the app registration's own"
            " SMTP.SendAsApp permission."
        ),
    )
    oauth_tenant = StringField(
        _l("Tenant"),
        description=_l("Microsoft only: the directory (tenant) ID or domain; required for app-only."),
    )
    oauth_client_id = StringField(
        _l("Client ID"), description=_l("The app registration's client (application) ID.")
    )
    oauth_client_secret = PasswordField(
        _l("Client secret"),
        description=_l(
            "Stored encrypted and never shown. When editing, leave it blank to keep the stored one."
        ),
    )
    oauth_refresh_token = PasswordField(
        _l("Refresh token"),
        description=_l(
            "Delegated grant: the token from signing in. Stored encrypted and never shown; when editing,"
            " leave it blank to keep the stored one."
        ),
    )
    oauth_sign_in = sign_in_field()
    oauth_scope = StringField(
        _l("Scope"),
        description=_l("Leave empty for the provider's default; required for your own endpoints."),
    )
    oauth_token_url = StringField(
        _l("Token endpoint"),
        description=_l("Only with your own endpoints: the HTTPS address that issues tokens."),
    )
    oauth_authorize_url = StringField(
        _l("Sign-in endpoint"),
        description=_l("Only with your own endpoints: the HTTPS address where a person signs in."),
    )
    backup_ids = AccountChoiceField(
        _l("Backup accounts"),
        coerce=int,
        choices=[],
        description=_l(
            "When this account's server cannot take a letter, the accounts chosen here are tried, in the order"
            " listed (hold Ctrl or Cmd to choose several)."
        ),
    )
    max_connections = IntegerField(
        _l("Connections at once"),
        default=0,
        widget=NumberInput(min=0, max=100),
        description=_l(
            "The most connections open to this server at once, across all workers and machines. 0: no limit."
        ),
    )

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


#: Write-only fields besides the password: never filled in, blank keeps the stored value.
SECRET_FIELDS = ("oauth_client_secret", "oauth_refresh_token")
OAUTH_FORM_FIELDS = (
    "oauth_provider",
    "oauth_flow",
    "oauth_tenant",
    "oauth_client_id",
    "oauth_client_secret",
    "oauth_refresh_token",
    "oauth_scope",
    "oauth_token_url",
    "oauth_authorize_url",
)
#: The account fields of the form, as far as the Python API knows them.
ACCOUNT_FORM_FIELDS = tuple(
    name
    for name in (
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
        *OAUTH_FORM_FIELDS,
        "backup_ids",
        "max_connections",
    )
    if name in ACCOUNT_FIELDS
)
for _name in (*OAUTH_FORM_FIELDS, "backup_ids", "max_connections"):
    if _name not in ACCOUNT_FORM_FIELDS:
        delattr(AccountForm, _name)


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
    """How the settings page shows one setting: label, one-line help, unit, input."""

    label: t.Any
    help: t.Any
    group: t.Any
    #: ``bool``, ``int``, ``choice`` or ``email``.
    kind: str
    unit: t.Any = None
    low: int | None = None
    high: int | None = None
    choices: tuple[tuple[str, t.Any], ...] = ()


GENERAL, SENDING, MESSAGE_LOG, QUEUE = (
    _l("General"),
    _l("Sending"),
    _l("Message log"),
    _l("Queue and retries"),
)
PERIODS = (("day", _l("day")), ("week", _l("week")), ("month", _l("month")), ("year", _l("year")))
LOG_LEVELS = (
    ("1", _l("1: client messages")),
    ("2", _l("2: client and server messages")),
    ("3", _l("3: client, server and connection information")),
    ("4", _l("4: client, server, connection and low-level data")),
)
SECONDS, MEGABYTES, DAYS = _l("s"), _l("MB"), _l("days")

#: Every setting the page knows, in the order it shows them. The ranges are
#: the ones ``validate_settings`` enforces (a test holds them together).
SETTINGS_META: dict[str, SettingMeta] = {
    "enabled": SettingMeta(
        _l("Send mail through SMTP accounts"),
        _l(
            "Routes every outgoing letter through the account of its From address. Until this is on,"
            " nothing else of the extension works and letters go out with Flask-Mail's own settings."
        ),
        GENERAL,
        "bool",
    ),
    "save_logs": SettingMeta(
        _l("Save sending logs"),
        _l("Keeps a log of connection checks and a log of sending for every account."),
        GENERAL,
        "bool",
    ),
    "log_level": SettingMeta(
        _l("Type of information in logs"),
        _l("How much of each SMTP conversation the logs keep. Passwords are never written."),
        GENERAL,
        "choice",
        choices=LOG_LEVELS,
    ),
    "log_rewrite_period": SettingMeta(
        _l("Log rewrite period"),
        _l(
            "How long a log is kept, counted from the last change of its account; then it starts over."
            " A log also starts over whenever its account is changed."
        ),
        GENERAL,
        "choice",
        choices=PERIODS,
    ),
    "max_log_size_mb": SettingMeta(
        _l("Max log file size"),
        _l("A log growing past this size is cleared. 0: no size check."),
        GENERAL,
        "int",
        MEGABYTES,
        0,
        1024,
    ),
    "timeout_s": SettingMeta(
        _l("Connection timeout"),
        _l("Limit for a connection check or a send; past it the operation fails with an error."),
        SENDING,
        "int",
        SECONDS,
        1,
        300,
    ),
    "send_test_on_check": SettingMeta(
        _l("Send a letter when checking the connection"),
        _l("A check verifies the login only, unless this is on: then it also sends a test letter."),
        SENDING,
        "bool",
    ),
    "test_recipient": SettingMeta(
        _l("Test letters go to"),
        _l("The default recipient of test letters and of the letter a check sends."),
        SENDING,
        "email",
    ),
    "cooldown_s": SettingMeta(
        _l("Cool-down after a connection failure"),
        _l("An account whose server could not be reached is skipped for this long. 0: never skipped."),
        SENDING,
        "int",
        SECONDS,
        0,
        86400,
    ),
    "keep_bodies": SettingMeta(
        _l("Keep the text of delivered letters"),
        _l("Off: the message log keeps the text of undelivered letters only, for resending."),
        MESSAGE_LOG,
        "bool",
    ),
    "message_retention_days": SettingMeta(
        _l("Keep the message log for"),
        _l("Older entries are removed. 0: kept forever."),
        MESSAGE_LOG,
        "int",
        DAYS,
        0,
        3650,
    ),
    "queue_undelivered": SettingMeta(
        _l("Queue letters that could not be sent"),
        _l("Instead of failing, a letter no server took waits in the queue and is tried again later."),
        QUEUE,
        "bool",
    ),
    "max_attempts": SettingMeta(
        _l("Attempts per letter"),
        _l("Tries of a queued letter, the first send included, before it is given up."),
        QUEUE,
        "int",
        None,
        1,
        100,
    ),
    "retry_backoff_s": SettingMeta(
        _l("First retry after"),
        _l("The wait doubles after every further failed try, up to a day."),
        QUEUE,
        "int",
        SECONDS,
        1,
        86400,
    ),
    "outbox_all": SettingMeta(
        _l("Send every letter through the outbox"),
        _l(
            "Sending stores each letter in the queue and returns at once; `flask smtp-accounts deliver`"
            " (or a worker) sends it. Web requests never wait on a mail server."
        ),
        QUEUE,
        "bool",
    ),
    "outbox_bulk": SettingMeta(
        _l("Send bulk letters through the outbox"),
        _l("Newsletters (letters with List-Unsubscribe or Precedence: bulk) wait in the queue for a worker."),
        QUEUE,
        "bool",
    ),
}


def setting_names() -> tuple[str, ...]:
    """The settings on the page: those the extension has, in the page's order."""
    known = [name for name in SETTINGS_META if name in SETTING_NAMES]
    return (*known, *(name for name in SETTING_NAMES if name not in SETTINGS_META))


def setting_meta(name: str) -> SettingMeta:
    """The page's description of a setting; a plain input for one it does not know yet."""
    if name in SETTINGS_META:
        return SETTINGS_META[name]
    default = getattr(DEFAULT_SETTINGS, name)
    kind = "bool" if isinstance(default, bool) else "int" if isinstance(default, int) else "text"
    return SettingMeta(name, "", _l("Other"), kind)


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
    groups: dict[t.Any, list[str]] = {}
    for name in setting_names():
        groups.setdefault(setting_meta(name).group, []).append(name)
    return list(groups.items())


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
