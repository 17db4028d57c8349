"""An account's fields, each declared once, and :class:`AccountInfo`, the frozen copy of an account.

Each field's declaration (:func:`~flask_smtp_accounts.declarations.spec`)
is where the account table's columns, ``validate_account``'s checks, the
admin's account form, the options of ``flask smtp-accounts add|edit`` and
the README's table of limits come from. The stored secrets (the password
and the OAuth2 client secret and refresh token) are undeclared: they are
ciphertext, never set as they are, and come in through write-only inputs.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field
from datetime import datetime

from .declarations import spec, specs
from .labels import account_label
from .texts import N_

#: The largest limit taken: far above any provider's, small enough for every database's integer.
MAX_LIMIT = 10_000_000
#: The highest ``max_connections`` of an account (0: no cap).
MAX_CONNECTIONS = 100
#: The group of the OAuth2 fields: checked together, and only when the account's authorization is OAuth2.
OAUTH2 = "oauth2"


def _limit(label: str, help: str, doc: str, cli: str) -> t.Any:
    """A sending limit (``quotas.py``): a whole number of letters or recipients in a window; 0 = none."""
    return spec(
        0,
        label,
        help,
        doc=doc,
        cli=cli,
        minimum=0,
        maximum=MAX_LIMIT,
        check="limit",
        cli_type=int,
        cli_metavar="N",
    )


def _oauth2_text(label: str, help: str, cli: str, length: int = 255) -> t.Any:
    """An OAuth2 field of text, checked with the others when the account's authorization is OAuth2."""
    return spec("", label, help, cli=cli, length=length, group=OAUTH2)


@dataclass(frozen=True)
class AccountInfo:
    """A detached, read-only copy of an account row, safe to cache and share."""

    id: int = 0
    active: bool = spec(
        True,
        N_("Active"),
        N_("An inactive account takes no part in choosing the account for a letter."),
        cli="Whether the account takes part in routing.",
        cli_flags="--active/--inactive",
    )
    sender_name: str = spec(
        "",
        N_("Sender name"),
        N_(
            "Put into a letter only when the letter has no sender name of its own. For newsletters,"
            " the account whose sender name equals the letter's is chosen."
        ),
        cli="Name put in letters that have none of their own.",
        length=255,
        check="one_line",
    )
    sender_email: str = spec(
        "",
        N_("Sender email"),
        N_("Letters whose From address is this email go through this account."),
        cli="The From address this account carries.",
        length=254,
        required=True,
        check="email",
    )
    host: str = spec(
        "",
        N_("Mail server address"),
        N_("The SMTP server's host name, for example smtp.yandex.ru."),
        cli="Mail server address (required without --preset).",
        length=255,
        required=True,
        check="host",
    )
    port: int = spec(
        587,
        N_("Mail server port"),
        N_("Usually 587 with STARTTLS, 465 with SSL, 25 without encryption."),
        cli="Mail server port (default 587).",
        minimum=1,
        maximum=65535,
        form_required=True,
        check="port",
    )
    security: str = spec(
        "starttls",
        N_("Connection security"),
        N_(
            "STARTTLS: the connection is switched to TLS before logging in; a server that does not offer it"
            " is refused. SSL: encrypted from the first byte. None: only for a server on a trusted network."
        ),
        cli="none, ssl (implicit TLS) or starttls (default).",
        choices=(("starttls", N_("STARTTLS (TLS)")), ("ssl", N_("SSL")), ("none", N_("None"))),
        length=16,
    )
    auth: str = spec(
        "login",
        N_("Authorization"),
        N_(
            "How the account logs in: with a password, or with OAuth2 access tokens (Microsoft 365, Google),"
            " or not at all."
        ),
        cli="login (default), none, or oauth2 (see the --oauth-* options).",
        choices=(("login", N_("Login and password")), ("oauth2", N_("OAuth2")), ("none", N_("None"))),
        length=16,
    )
    login: str = spec(
        "",
        N_("Login"),
        N_("Usually the full mailbox address; with OAuth2, the mailbox the token may send as."),
        cli="Login on the server.",
        length=255,
        check="login",
    )
    verify_tls: bool = spec(
        True,
        N_("Verify the server's certificate"),
        N_("Turn off only for a server with a self-signed certificate that you trust."),
        cli="Verify the server's certificate (default). Turn off only for a server you trust.",
    )
    updated_at: datetime | None = None
    #: Accounts that carry the letter, in this order, when this one fails.
    backup_ids: tuple[int, ...] = spec(
        (),
        N_("Backup accounts"),
        N_(
            "When this account's server cannot take a letter, the accounts chosen here are tried, in the order"
            " listed (hold Ctrl or Cmd to choose several)."
        ),
        cli='Accounts to try, in order, when this one fails, e.g. "3,5" ("" for none).',
        cli_metavar="IDS",
        check="backup_ids",
    )
    limit_per_minute: int = _limit(
        N_("Letters a minute"),
        N_(
            "At most this many letters in any 60 seconds, counted across every process of the site; 0: no limit."
        ),
        doc="At most this many letters in any 60 seconds; `0` = no limit.",
        cli="At most N letters in any 60 seconds, across every process (0: no limit).",
    )
    limit_per_hour: int = _limit(
        N_("Letters an hour"),
        N_("At most this many letters in any hour; 0: no limit."),
        doc="At most this many letters in any 3,600 seconds.",
        cli="At most N letters in any hour (0: no limit).",
    )
    limit_per_day: int = _limit(
        N_("Letters a day"),
        N_("At most this many letters in any 24 hours; 0: no limit."),
        doc="At most this many letters in any 24 hours (a rolling day, not the calendar's).",
        cli="At most N letters in any 24 hours (0: no limit).",
    )
    recipient_limit_per_day: int = _limit(
        N_("Recipients a day"),
        N_("At most this many recipients, of all letters together, in any 24 hours; 0: no limit."),
        doc="At most this many envelope recipients (RCPT TO), of all letters together, in any 24 hours.",
        cli="At most N envelope recipients in any 24 hours (0: no limit).",
    )
    over_limit: str = spec(
        "wait",
        N_("At a limit"),
        N_(
            "What a queued letter does when the account is at a limit. A letter sent at once tries the backups"
            " either way, then waits in the queue (when undelivered letters are queued)."
        ),
        doc="What a *queued* letter does when the account is at a limit: `wait` for its next slot, or go"
        " through its `backups`.",
        cli="At a limit, a queued letter waits for the next slot (wait, default) or goes through the backups.",
        choices=(
            ("wait", N_("Queued letters wait for the next free slot")),
            ("backups", N_("Queued letters go through the backups")),
        ),
        length=16,
    )
    pipelining: bool = spec(
        True,
        N_("Pipeline commands"),
        N_(
            "When the server offers PIPELINING, send MAIL, RCPT and DATA in one go: a letter waits two"
            " round trips instead of four. Turn off only for a server that mishandles it."
        ),
        cli="Send MAIL, RCPT and DATA in one write when the server offers PIPELINING (default).",
    )
    password_encrypted: str | None = field(default=None, repr=False)
    oauth_provider: str = spec(
        "",
        N_("OAuth2 provider"),
        N_("Who issues the access tokens."),
        cli="With --auth oauth2: microsoft, google or custom (a token URL of your own).",
        choices=(
            ("microsoft", N_("Microsoft 365")),
            ("google", N_("Google")),
            ("custom", N_("Other (own endpoints)")),
        ),
        length=16,
        group=OAUTH2,
        form_default="microsoft",
    )
    oauth_flow: str = spec(
        "",
        N_("OAuth2 grant"),
        N_(
            "Delegated: the refresh token a person got by signing in once. App-only: the app registration's own"
            " SMTP.SendAsApp permission."
        ),
        cli="app (Microsoft client credentials) or delegated (a refresh token; default).",
        choices=(
            ("delegated", N_("Delegated: a person signed in once")),
            ("app", N_("App-only (Microsoft)")),
        ),
        length=16,
        group=OAUTH2,
        form_default="delegated",
    )
    oauth_tenant: str = _oauth2_text(
        N_("Tenant"),
        N_("Microsoft only: the directory (tenant) ID or domain; required for app-only."),
        cli="Microsoft directory (tenant) id or domain.",
    )
    oauth_client_id: str = _oauth2_text(
        N_("Client ID"),
        N_("The app registration's client (application) ID."),
        cli="The app's client (application) id.",
    )
    oauth_token_url: str = _oauth2_text(
        N_("Token endpoint"),
        N_("Only with your own endpoints: the HTTPS address that issues tokens."),
        cli="Token endpoint of a custom provider.",
        length=500,
    )
    oauth_authorize_url: str = _oauth2_text(
        N_("Sign-in endpoint"),
        N_("Only with your own endpoints: the HTTPS address where a person signs in."),
        cli="Authorization endpoint of a custom provider (for signing in).",
        length=500,
    )
    oauth_scope: str = _oauth2_text(
        N_("Scope"),
        N_("Leave empty for the provider's default; required for your own endpoints."),
        cli="Scope of the tokens (default: the provider's for the flow).",
        length=500,
    )
    oauth_client_secret_encrypted: str | None = field(default=None, repr=False)
    oauth_refresh_token_encrypted: str | None = field(default=None, repr=False)
    max_connections: int = spec(
        0,
        N_("Connections at once"),
        N_("The most connections open to this server at once, across all workers and machines. 0: no limit."),
        cli="Most connections open to the server at once, across all workers (0: no limit).",
        minimum=0,
        maximum=MAX_CONNECTIONS,
    )

    @property
    def label(self) -> str:
        """How a person names the account: ``Name <email>`` or the email."""
        return account_label(self.sender_name, self.sender_email)


ACCOUNT_INFO_FIELDS = tuple(AccountInfo.__dataclass_fields__)
#: Every field a person sets (API, admin form, CLI; what a sign-in carries to its callback).
ACCOUNT_SPECS = specs(AccountInfo)
SETTABLE_FIELDS: tuple[str, ...] = tuple(f.name for f in ACCOUNT_SPECS)
#: The OAuth2 fields a person sets (the secrets go through write-only attributes).
OAUTH_FIELDS = tuple(f.name for f in ACCOUNT_SPECS if f.group == OAUTH2)
#: The sending limits of an account (``quotas.py``), each a whole number, 0 = none.
LIMITS = tuple(f.name for f in ACCOUNT_SPECS if f.check == "limit")
#: The account fields of its limits.
LIMIT_FIELDS = (*LIMITS, "over_limit")
#: Write-only secret attribute -> its encrypted column.
OAUTH_SECRETS = {
    "oauth_client_secret": "oauth_client_secret_encrypted",
    "oauth_refresh_token": "oauth_refresh_token_encrypted",
}
#: The choices of the fields that have them: ``{"security": ("starttls", "ssl", "none"), ...}``.
CHOICES = {f.name: tuple(value for value, _ in f.choices) for f in ACCOUNT_SPECS if f.choices}
#: Every stored secret -> its encrypted column.
SECRETS = {"password": "password_encrypted", **OAUTH_SECRETS}


def secrets_held(values: t.Mapping[str, t.Any], given: t.Collection[str] = ()) -> dict[str, bool]:
    """``has_password``, ``has_oauth_client_secret``...: whether each secret is stored (or ``given``).

    What the validation needs to know about the secrets, without them.
    """
    return {f"has_{name}": name in given or bool(values.get(column)) for name, column in SECRETS.items()}
