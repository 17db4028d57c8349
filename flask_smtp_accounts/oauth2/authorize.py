"""Where a person signs in: the authorization URL of the code flow, with its PKCE pair (RFC 7636).

The Flask side of signing in (the session, the callback) is
``oauth2_sign_in.py``; this module only builds what the provider needs.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import urllib.parse

from .providers import PROVIDERS, OAuth2Account, Providers, authorize_url_of, scope_of


def pkce_pair() -> tuple[str, str]:
    """A PKCE ``(verifier, S256 challenge)`` pair (RFC 7636)."""
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest())
        .rstrip(b"=")
        .decode("ascii")
    )
    return verifier, challenge


def sign_in_scope(account: OAuth2Account, providers: Providers = PROVIDERS) -> str:
    """What a person is asked to allow: the SMTP scope plus (for known providers) their address."""
    provider = providers.get(account.oauth_provider)
    scope = scope_of(account, providers)
    if provider is None:
        return scope
    extra = [s for s in provider.sign_in_scope.split() if s not in scope.split()]
    return " ".join([*scope.split(), *extra])


def authorization_url(
    account: OAuth2Account,
    *,
    redirect_uri: str,
    state: str,
    code_challenge: str,
    providers: Providers = PROVIDERS,
) -> str:
    """Where to send the browser so that a person signs in and allows sending as their mailbox."""
    base = authorize_url_of(account, providers)
    params = {
        "client_id": account.oauth_client_id,
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "scope": sign_in_scope(account, providers),
        "state": state,
        "code_challenge": code_challenge,
        "code_challenge_method": "S256",
    }
    if account.login:
        params["login_hint"] = account.login
    provider = providers.get(account.oauth_provider)
    if provider is not None:
        params.update(provider.authorize_params)
    separator = "&" if urllib.parse.urlsplit(base).query else "?"
    return base + separator + urllib.parse.urlencode(params)
