"""OAuth2 for SMTP: access tokens from Microsoft, Google or any token endpoint.

Microsoft 365 stops accepting passwords for SMTP AUTH at the end of 2026
and Google already refuses them without an app password, so an account
can log in with an OAuth2 access token instead (``auth="oauth2"``, SASL
XOAUTH2 in ``sasl.py``). The token comes from one of two grants:

- ``app`` (Microsoft app-only): client credentials of an app registration
  with the ``SMTP.SendAsApp`` permission, scope
  ``https://outlook.office365.com/.default``;
- ``delegated`` (Microsoft and Google): a refresh token that a person got
  by signing in once (see :func:`authorization_url` and
  :func:`exchange_code`), exchanged for access tokens as needed.

One module per part: ``providers`` (the provider table and an account's
endpoints), ``tokens`` (the token endpoint client), ``explain`` (what a
refusal means and how to fix it), ``authorize`` (the sign-in URL and
PKCE) and ``cache`` (access tokens in memory). Nothing here reads or
writes the database: a rotated refresh token goes to the writer the app
hands to :class:`AccessTokens`.
"""

from __future__ import annotations

from .authorize import authorization_url, pkce_pair, sign_in_scope
from .cache import AccessToken, AccessTokens
from .explain import explain_token_error
from .providers import (
    FLOW_CHOICES,
    GOOGLE_SCOPE,
    MICROSOFT_APP_SCOPE,
    MICROSOFT_DEFAULT_TENANT,
    MICROSOFT_DELEGATED_SCOPE,
    PROVIDER_CHOICES,
    PROVIDERS,
    OAuth2Account,
    Provider,
    Providers,
    authorize_url_of,
    is_loopback,
    providers_with,
    scope_of,
    token_url_of,
)
from .tokens import DEFAULT_LIFETIME, Grant, Token, exchange_code, fetch_token, grant_of

__all__ = [
    "DEFAULT_LIFETIME",
    "FLOW_CHOICES",
    "GOOGLE_SCOPE",
    "MICROSOFT_APP_SCOPE",
    "MICROSOFT_DEFAULT_TENANT",
    "MICROSOFT_DELEGATED_SCOPE",
    "PROVIDERS",
    "PROVIDER_CHOICES",
    "AccessToken",
    "AccessTokens",
    "Grant",
    "OAuth2Account",
    "Provider",
    "Providers",
    "Token",
    "authorization_url",
    "authorize_url_of",
    "exchange_code",
    "explain_token_error",
    "fetch_token",
    "grant_of",
    "is_loopback",
    "pkce_pair",
    "providers_with",
    "scope_of",
    "sign_in_scope",
    "token_url_of",
]
