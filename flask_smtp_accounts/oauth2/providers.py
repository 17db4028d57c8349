"""The providers an OAuth2 account can name, and where an account's token and sign-in endpoints are.

A provider is a row of :data:`PROVIDERS`: its endpoints and the scopes its
SMTP tokens need. A ``custom`` account names its endpoints itself.
``SMTP_ACCOUNTS_OAUTH2_PROVIDERS`` replaces endpoints of a known provider
(national clouds, or a local provider in tests): :func:`providers_with`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import typing as t
import urllib.parse
from dataclasses import dataclass, field

PROVIDER_CHOICES = ("microsoft", "google", "custom")
FLOW_CHOICES = ("app", "delegated")

#: Scope of Microsoft's app-only (client credentials) tokens for SMTP.
MICROSOFT_APP_SCOPE = "https://outlook.office365.com/.default"
#: Scope of Microsoft's delegated tokens for SMTP.
MICROSOFT_DELEGATED_SCOPE = "https://outlook.office.com/SMTP.Send offline_access"
#: Scope of Google's tokens for SMTP (Gmail accepts no narrower one).
GOOGLE_SCOPE = "https://mail.google.com/"

#: Tenant used for Microsoft delegated sign-in when the account names none.
MICROSOFT_DEFAULT_TENANT = "common"


class OAuth2Account(t.Protocol):
    """What this package reads of an account; ``models.AccountInfo`` is one.

    A protocol rather than ``AccountInfo`` itself: the models import the
    validation, which imports the provider choices from here, so this
    package imports nothing of the models, not even for type checking.
    """

    @property
    def id(self) -> int: ...
    @property
    def login(self) -> str: ...
    @property
    def oauth_provider(self) -> str: ...
    @property
    def oauth_flow(self) -> str: ...
    @property
    def oauth_tenant(self) -> str: ...
    @property
    def oauth_client_id(self) -> str: ...
    @property
    def oauth_token_url(self) -> str: ...
    @property
    def oauth_authorize_url(self) -> str: ...
    @property
    def oauth_scope(self) -> str: ...
    @property
    def oauth_client_secret_encrypted(self) -> str | None: ...
    @property
    def oauth_refresh_token_encrypted(self) -> str | None: ...


@dataclass(frozen=True)
class Provider:
    """Where a provider's endpoints are and which scopes its SMTP tokens need."""

    name: str
    label: str
    token_url: str
    authorize_url: str
    #: ``None``: the provider has no app-only flow for SMTP.
    app_scope: str | None
    delegated_scope: str
    #: Extra scopes asked for when a person signs in (to learn the mailbox's address).
    sign_in_scope: str
    #: Extra parameters of the authorization request.
    authorize_params: t.Mapping[str, str] = field(default_factory=dict)


PROVIDERS: dict[str, Provider] = {
    "microsoft": Provider(
        name="microsoft",
        label="Microsoft",
        token_url="https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
        authorize_url="https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize",
        app_scope=MICROSOFT_APP_SCOPE,
        delegated_scope=MICROSOFT_DELEGATED_SCOPE,
        sign_in_scope="openid email",
        authorize_params={"prompt": "select_account"},
    ),
    "google": Provider(
        name="google",
        label="Google",
        token_url="https://oauth2.googleapis.com/token",
        authorize_url="https://accounts.google.com/o/oauth2/v2/auth",
        app_scope=None,
        delegated_scope=GOOGLE_SCOPE,
        sign_in_scope="openid email",
        # Google hands out a refresh token only with offline access, and again only on a new consent.
        authorize_params={"access_type": "offline", "prompt": "consent"},
    ),
}

Providers = t.Mapping[str, Provider]


def providers_with(overrides: t.Mapping[str, t.Mapping[str, str]] | None) -> dict[str, Provider]:
    """The known providers with some endpoints replaced (national clouds, or a local provider in tests).

    ``overrides`` is ``SMTP_ACCOUNTS_OAUTH2_PROVIDERS``, e.g.
    ``{"microsoft": {"token_url": "https://login.microsoftonline.us/{tenant}/oauth2/v2.0/token", ...}}``.
    """
    out = dict(PROVIDERS)
    for name, changes in (overrides or {}).items():
        if name not in PROVIDERS:
            raise RuntimeError(
                f"SMTP_ACCOUNTS_OAUTH2_PROVIDERS names an unknown provider {name!r}; known: microsoft, google."
            )
        unknown = set(changes) - {"token_url", "authorize_url", "app_scope", "delegated_scope"}
        if unknown:
            raise RuntimeError(
                f"SMTP_ACCOUNTS_OAUTH2_PROVIDERS[{name!r}] has unknown keys: {', '.join(sorted(unknown))}."
            )
        fields: dict[str, t.Any] = dict(changes)
        out[name] = dataclasses.replace(PROVIDERS[name], **fields)
    return out


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` is this machine (plain HTTP is allowed there, for tests and local proxies)."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _with_tenant(url: str, account: OAuth2Account) -> str:
    tenant = account.oauth_tenant or MICROSOFT_DEFAULT_TENANT
    return url.format(tenant=urllib.parse.quote(tenant, safe=""))


def token_url_of(account: OAuth2Account, providers: Providers = PROVIDERS) -> str:
    """The token endpoint of an account: the provider's, or the one it names."""
    provider = providers.get(account.oauth_provider)
    if provider is None:
        return account.oauth_token_url
    return _with_tenant(provider.token_url, account)


def authorize_url_of(account: OAuth2Account, providers: Providers = PROVIDERS) -> str:
    """The authorization endpoint (for signing in), or ``""`` when a custom provider names none."""
    provider = providers.get(account.oauth_provider)
    if provider is None:
        return account.oauth_authorize_url
    return _with_tenant(provider.authorize_url, account)


def scope_of(account: OAuth2Account, providers: Providers = PROVIDERS) -> str:
    """The scope the account's tokens are asked for: its own, or the provider's for its flow."""
    if account.oauth_scope:
        return account.oauth_scope
    provider = providers.get(account.oauth_provider)
    if provider is None:
        return ""
    if account.oauth_flow == "app":
        return provider.app_scope or ""
    return provider.delegated_scope
