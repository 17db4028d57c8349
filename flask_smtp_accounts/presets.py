"""Provider presets: the connection data of well-known mail services, declared once.

A preset fills what an admin would otherwise have to know by heart (host,
port, security, authorization) and says what the provider documents about
it: who the login is, how many letters it takes, where its app passwords
or OAuth2 set-up live, and when it stops accepting a password. The account
form (``admin/forms.py``, with its small script) and the command line
(``flask smtp-accounts add --preset NAME``) both read :data:`PRESETS`.

Sending limits are the provider's documented figures only where they are
known for sure (Google and Microsoft, from their help pages, late 2026):
there the preset also sets the account's limits to those caps (``caps``);
elsewhere the text says to see the provider, because plans differ. The
English sentences are :class:`~flask_smtp_accounts.texts.Text`; the admin
says them in the page's language.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from .errors import InvalidAccountError
from .texts import N_, Text
from .validation import LIMITS

#: The usual port of each connection security; the form's port follows the security with these.
SECURITY_PORTS = {"starttls": 587, "ssl": 465, "none": 25}

#: What the limits line says where no figure is given.
SEE_PROVIDER = Text(
    "preset-limits-see-provider", N_("See the provider's documentation: limits depend on the plan.")
)

#: Amazon SES regions with an SMTP endpoint (``email-smtp.<region>.amazonaws.com``).
SES_REGIONS = (
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "sa-east-1",
    "eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "eu-central-2", "eu-north-1", "eu-south-1",
    "ap-south-1", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-southeast-1", "ap-southeast-2",
    "ap-southeast-3", "me-south-1", "me-central-1", "af-south-1", "il-central-1",
)  # fmt: skip


@dataclass(frozen=True)
class Preset:
    """One provider's SMTP submission settings and what it documents about them."""

    #: What ``--preset`` takes and the form's choice sends.
    key: str
    #: The provider's name, as the provider writes it (not translated).
    name: str
    #: The server; ``{region}`` is replaced by the chosen region.
    host: str
    port: int
    #: ``starttls``, ``ssl`` or ``none``, as the account's ``security``.
    security: str
    #: ``login`` or ``oauth2``, as the account's ``auth``.
    auth: str
    #: Who logs in, in words (e.g. "your full address"); the admin says it in the page's language.
    login_hint: Text
    #: The login itself when the provider fixes it (SendGrid's ``apikey``); ``""``: the admin's own.
    login: str = ""
    #: The documented sending limits, or :data:`SEE_PROVIDER`.
    limits: Text = SEE_PROVIDER
    #: Where the app password, API key or OAuth2 set-up is made.
    secrets_url: str = ""
    #: When a password login stops working, if the provider announced it.
    deadline: Text | None = None
    #: With ``auth="oauth2"``: the account's ``oauth_provider``.
    oauth_provider: str = ""
    #: The regions ``{region}`` may take; the first is the default.
    regions: tuple[str, ...] = ()
    #: The account's sending limits (``quotas.py``) set to the documented caps, where the provider documents
    #: them for every account; ``()``: the limits are left to the admin.
    caps: tuple[tuple[str, int], ...] = ()

    def host_for(self, region: str | None = None) -> str:
        """The server for ``region`` (the default region when none is given)."""
        if not self.regions:
            return self.host
        region = region or self.regions[0]
        if region not in self.regions:
            raise InvalidAccountError(
                "host", f"{self.name} has no region {region!r}; choose one of: {', '.join(self.regions)}."
            )
        return self.host.format(region=region)

    def fields(self, region: str | None = None) -> dict[str, t.Any]:
        """The account fields this preset sets, as ``add_account`` takes them."""
        fields: dict[str, t.Any] = {
            "host": self.host_for(region),
            "port": self.port,
            "security": self.security,
            "auth": self.auth,
        }
        if self.login:
            fields["login"] = self.login
        if self.oauth_provider:
            fields["oauth_provider"] = self.oauth_provider
        if self.caps:
            fields.update({name: 0 for name in LIMITS}, **dict(self.caps))
        return fields


_APP_PASSWORD = Text(
    "preset-login-app-password",
    N_("Your full email address; the password is an app password, not the account's own."),
)
_MAILGUN_LOGIN = Text(
    "preset-login-mailgun",
    N_("The SMTP login of your sending domain (e.g. postmaster@mg.example.com) and its password."),
)
_GOOGLE_APP_PASSWORDS = "https://myaccount.google.com/apppasswords"
_GOOGLE_DEADLINE = Text(
    "preset-deadline-google",
    N_(
        "Google stopped accepting the account's own password in May 2022 (consumer Gmail) and retired"
        ' "less secure apps" in 2024-2025 (Workspace): use an app password (with 2-Step Verification) or OAuth2.'
    ),
)

#: Every preset, in the order the form lists them.
PRESETS: tuple[Preset, ...] = (
    Preset(
        "gmail", "Gmail", "smtp.gmail.com", 587, "starttls", "login", _APP_PASSWORD,
        limits=Text("preset-limits-gmail", N_("More than 500 messages a day, or more than 500 recipients in one message, triggers the limit.")),
        secrets_url=_GOOGLE_APP_PASSWORDS, deadline=_GOOGLE_DEADLINE, caps=(("limit_per_day", 500),),
    ),
    Preset(
        "google-workspace", "Google Workspace", "smtp.gmail.com", 587, "starttls", "oauth2",
        Text("preset-login-google-workspace", N_("The mailbox address the OAuth2 token may send as (or an app password with login and password).")),
        limits=Text("preset-limits-google-workspace", N_(
            "2,000 messages a day (500 on trial accounts); 100 recipients per message over SMTP;"
            " 10,000 recipients a day."
        )),
        secrets_url="https://developers.google.com/gmail/imap/xoauth2-protocol", deadline=_GOOGLE_DEADLINE,
        oauth_provider="google", caps=(("limit_per_day", 2000), ("recipient_limit_per_day", 10_000)),
    ),
    Preset(
        "microsoft-365", "Microsoft 365", "smtp.office365.com", 587, "starttls", "oauth2",
        Text("preset-login-microsoft-365", N_("The mailbox address; SMTP AUTH must be enabled for the mailbox.")),
        limits=Text("preset-limits-microsoft-365", N_("30 messages a minute per mailbox; 10,000 recipients a day; 500 recipients per message.")),
        secrets_url=(
            "https://learn.microsoft.com/exchange/client-developer/legacy-protocols/"
            "how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth"
        ),
        deadline=Text("preset-deadline-microsoft-365", N_(
            "SMTP AUTH with a password (basic authentication) is disabled by default for existing tenants from"
            " the end of December 2026 (an administrator can turn it back on); tenants created after December 2026"
            " get OAuth2 only. Servers then refuse with 550 5.7.30. Use OAuth2."
        )),
        oauth_provider="microsoft", caps=(("limit_per_minute", 30), ("recipient_limit_per_day", 10_000)),
    ),
    Preset(
        "outlook", "Outlook.com", "smtp-mail.outlook.com", 587, "starttls", "login", _APP_PASSWORD,
        secrets_url="https://account.microsoft.com/security",
    ),
    Preset(
        "yahoo", "Yahoo Mail", "smtp.mail.yahoo.com", 465, "ssl", "login", _APP_PASSWORD,
        secrets_url="https://login.yahoo.com/account/security",
    ),
    Preset(
        "icloud", "iCloud Mail", "smtp.mail.me.com", 587, "starttls", "login",
        Text("preset-login-icloud", N_("Your full iCloud Mail address; the password is an app-specific password.")),
        secrets_url="https://account.apple.com/account/manage",
    ),
    Preset(
        "zoho", "Zoho Mail", "smtp.zoho.{region}", 465, "ssl", "login", _APP_PASSWORD,
        secrets_url="https://accounts.zoho.com/home#security", regions=("com", "eu", "in", "com.au"),
    ),
    Preset(
        "yandex", "Yandex Mail", "smtp.yandex.ru", 465, "ssl", "login", _APP_PASSWORD,
        secrets_url="https://id.yandex.ru/security/app-passwords",
    ),
    Preset(
        "mailru", "Mail.ru", "smtp.mail.ru", 465, "ssl", "login", _APP_PASSWORD,
        secrets_url="https://id.mail.ru/security",
    ),
    Preset(
        "fastmail", "Fastmail", "smtp.fastmail.com", 465, "ssl", "login", _APP_PASSWORD,
        secrets_url="https://app.fastmail.com/settings/security/apps",
    ),
    Preset(
        "amazon-ses", "Amazon SES", "email-smtp.{region}.amazonaws.com", 587, "starttls", "login",
        Text("preset-login-amazon-ses", N_("The SMTP user name made in the SES console (not an AWS access key); the password is its SMTP password.")),
        limits=Text("preset-limits-amazon-ses", N_(
            "In the sandbox: 200 messages a day and 1 message a second, to verified addresses only;"
            " out of it, the quota shown in the SES console."
        )),
        secrets_url="https://docs.aws.amazon.com/ses/latest/dg/smtp-credentials.html", regions=SES_REGIONS,
    ),
    Preset(
        "sendgrid", "SendGrid", "smtp.sendgrid.net", 587, "starttls", "login",
        Text("preset-login-sendgrid", N_("The login is the word apikey; the password is an API key.")), login="apikey",
        secrets_url="https://app.sendgrid.com/settings/api_keys",
    ),
    Preset(
        "mailgun", "Mailgun (US)", "smtp.mailgun.org", 587, "starttls", "login", _MAILGUN_LOGIN,
        secrets_url="https://app.mailgun.com/",
    ),
    Preset(
        "mailgun-eu", "Mailgun (EU)", "smtp.eu.mailgun.org", 587, "starttls", "login", _MAILGUN_LOGIN,
        secrets_url="https://app.eu.mailgun.com/",
    ),
    Preset(
        "postmark", "Postmark", "smtp.postmarkapp.com", 587, "starttls", "login",
        Text("preset-login-postmark", N_("The Server API token, as the login and as the password.")),
        secrets_url="https://postmarkapp.com/developer/user-guide/send-email-with-smtp",
    ),
    Preset(
        "brevo", "Brevo", "smtp-relay.brevo.com", 587, "starttls", "login",
        Text("preset-login-brevo", N_("The SMTP login shown in Brevo's SMTP settings; the password is an SMTP key.")),
        secrets_url="https://app.brevo.com/settings/keys/smtp",
    ),
    Preset(
        "mailjet", "Mailjet", "in-v3.mailjet.com", 587, "starttls", "login",
        Text("preset-login-mailjet", N_("The API key as the login; the secret key as the password.")),
        secrets_url="https://app.mailjet.com/account/apikeys",
    ),
    Preset(
        "smtp2go", "SMTP2GO", "mail.smtp2go.com", 587, "starttls", "login",
        Text("preset-login-smtp2go", N_("An SMTP user made in the SMTP2GO dashboard, and its password.")),
        secrets_url="https://app.smtp2go.com/",
    ),
)  # fmt: skip

PRESET_KEYS = tuple(p.key for p in PRESETS)


#: The account fields a preset may set (``Preset.fields``): the command line does not require them of ``add``.
PRESET_FIELDS = ("host", "port", "security", "auth", "login", "oauth_provider", *LIMITS)


def get_preset(key: str) -> Preset:
    """The preset named ``key``; ``InvalidAccountError`` naming the known ones otherwise."""
    for preset in PRESETS:
        if preset.key == key:
            return preset
    raise InvalidAccountError(
        "preset", f"There is no preset {key!r}; choose one of: {', '.join(PRESET_KEYS)}."
    )


def with_preset(key: str | None, given: t.Mapping[str, t.Any], region: str | None = None) -> dict[str, t.Any]:
    """``given`` account fields over the preset's: what the admin says wins over what the preset says."""
    if not key:
        if region:
            raise InvalidAccountError("preset", "A region is chosen together with a preset (--preset).")
        return dict(given)
    return {**get_preset(key).fields(region), **given}
