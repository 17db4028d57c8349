"""The token endpoint client: what an account asks for (a :class:`Grant`) and the access token it gets.

Two form posts (client credentials or refresh token, and the sign-in's
authorization code) over ``deadlines.post``: every read of the answer is
under the account's ``timeout_s`` and the answer is capped at
:data:`~flask_smtp_accounts.deadlines.TOKEN_ANSWER_MAX_BYTES`, so a token
endpoint that drips or never stops cannot hold a sender. Every failure is
an :class:`~flask_smtp_accounts.errors.OAuth2Error` whose fix a person can
follow (``explain.py`` reads the endpoint's refusals).
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import typing as t
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

from .. import deadlines
from ..errors import OAuth2Error
from ..texts import N_, Text
from .explain import explain_token_error
from .providers import PROVIDERS, OAuth2Account, Providers, is_loopback, scope_of, token_url_of

if t.TYPE_CHECKING:
    from ..crypto import Vault

#: Lifetime assumed when a token endpoint does not say (RFC 6749 makes ``expires_in`` optional).
DEFAULT_LIFETIME = 3600.0


@dataclass(frozen=True)
class Grant:
    """Everything needed to ask a token endpoint for an access token. Holds secrets: never log it."""

    provider: str
    flow: str
    token_url: str
    client_id: str
    client_secret: str = field(repr=False)
    scope: str
    refresh_token: str | None = field(default=None, repr=False)

    @property
    def endpoint_host(self) -> str:
        return urllib.parse.urlsplit(self.token_url).hostname or self.token_url


def grant_of(
    account: OAuth2Account, vault: Vault, refresh_token: str | None = None, providers: Providers = PROVIDERS
) -> Grant:
    """The grant of an OAuth2 account, its secrets decrypted."""
    secret = (
        vault.decrypt(account.oauth_client_secret_encrypted) if account.oauth_client_secret_encrypted else ""
    )
    if account.oauth_flow == "delegated" and refresh_token is None and account.oauth_refresh_token_encrypted:
        refresh_token = vault.decrypt(account.oauth_refresh_token_encrypted)
    return Grant(
        provider=account.oauth_provider,
        flow=account.oauth_flow,
        token_url=token_url_of(account, providers),
        client_id=account.oauth_client_id,
        client_secret=secret,
        scope=scope_of(account, providers),
        refresh_token=refresh_token if account.oauth_flow == "delegated" else None,
    )


@dataclass(frozen=True)
class Token:
    """A token endpoint's answer. Holds secrets: never log it."""

    access_token: str = field(repr=False)
    #: Seconds the access token is valid for, as the endpoint said.
    expires_in: float
    #: A new refresh token, when the endpoint rotated it (or issued the first one).
    refresh_token: str | None = field(default=None, repr=False)
    #: The ``email`` claim of an OpenID id_token, when the endpoint sent one.
    email: str | None = None
    scope: str | None = None


def fetch_token(grant: Grant, *, timeout: float, account_id: int | None = None) -> Token:
    """Ask the token endpoint for an access token with ``grant``; raises :class:`OAuth2Error`."""
    if grant.flow == "app":
        form = {"grant_type": "client_credentials", "scope": grant.scope}
    else:
        if not grant.refresh_token:
            raise _missing_refresh_token(grant, account_id)
        form = {"grant_type": "refresh_token", "refresh_token": grant.refresh_token}
        if grant.scope:
            form["scope"] = grant.scope
    return post_token_request(grant, form, timeout=timeout, account_id=account_id)


def exchange_code(
    grant: Grant,
    *,
    code: str,
    code_verifier: str,
    redirect_uri: str,
    timeout: float,
    account_id: int | None = None,
) -> Token:
    """Trade an authorization code (with its PKCE verifier) for tokens; raises :class:`OAuth2Error`."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": code_verifier,
        "redirect_uri": redirect_uri,
    }
    return post_token_request(grant, form, timeout=timeout, account_id=account_id)


def post_token_request(
    grant: Grant, form: dict[str, str], *, timeout: float, account_id: int | None
) -> Token:
    """POST ``form`` (plus the client's credentials) to the token endpoint and read the answer."""
    host = urllib.parse.urlsplit(grant.token_url).hostname
    status, raw = _post(grant, form, timeout=timeout, account_id=account_id)
    try:
        answer = json.loads(raw.decode("utf-8"))
        if not isinstance(answer, dict):
            raise ValueError("not an object")
    except (UnicodeDecodeError, ValueError):
        raise OAuth2Error(
            Text(
                "token-answer-not-json",
                N_("the token endpoint answered HTTP %(status)s without OAuth2 JSON"),
                status=status,
            ),
            account_id=account_id,
            host=host,
            status=status,
            endpoint_down=status >= 500,
            fix=_check_token_url(),
        ) from None
    if status != 200 or "error" in answer:
        raise explain_token_error(
            answer,
            status,
            provider=grant.provider,
            flow=grant.flow,
            host=grant.endpoint_host,
            account_id=account_id,
            grant_type=form.get("grant_type", ""),
        )
    access_token = answer.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise OAuth2Error(
            Text("token-answer-without-token", N_("the token endpoint answered without an access token")),
            account_id=account_id,
            host=host,
            status=status,
            fix=_check_token_url(),
        )
    try:
        expires_in = float(answer.get("expires_in") or DEFAULT_LIFETIME)
    except (TypeError, ValueError):
        expires_in = DEFAULT_LIFETIME
    refresh_token = answer.get("refresh_token")
    return Token(
        access_token=access_token,
        expires_in=max(expires_in, 0.0),
        refresh_token=refresh_token if isinstance(refresh_token, str) and refresh_token else None,
        email=_id_token_email(answer.get("id_token")),
        scope=answer.get("scope") if isinstance(answer.get("scope"), str) else None,
    )


def _post(grant: Grant, form: dict[str, str], *, timeout: float, account_id: int | None) -> tuple[int, bytes]:
    """The endpoint's HTTP status and answer (at most the cap), read under ``timeout``."""
    parts = urllib.parse.urlsplit(grant.token_url)
    if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback(parts.hostname)):
        raise OAuth2Error(
            Text("token-url-not-https", N_("the token URL must start with https://")),
            account_id=account_id,
            host=parts.hostname,
            fix=Text("fix-token-url-https", N_("Enter the provider's https:// token endpoint.")),
        )
    body = {**form, "client_id": grant.client_id}
    if grant.client_secret:
        body["client_secret"] = grant.client_secret
    request = urllib.request.Request(
        grant.token_url,
        data=urllib.parse.urlencode(body).encode("ascii"),
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
        method="POST",
    )
    try:
        return deadlines.post(
            request,
            timeout=timeout,
            context=ssl.create_default_context(),
            direct=is_loopback(parts.hostname),
            limit=deadlines.TOKEN_ANSWER_MAX_BYTES,
        )
    except deadlines.AnswerTooLarge:
        raise OAuth2Error(
            Text(
                "token-answer-too-large",
                N_("the token endpoint's answer went past %(kib)s KiB"),
                kib=deadlines.TOKEN_ANSWER_MAX_BYTES // 1024,
            ),
            account_id=account_id,
            host=parts.hostname,
            fix=_check_token_url(),
        ) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        reason = getattr(err, "reason", err)
        if isinstance(reason, TimeoutError):
            why = Text(
                "token-endpoint-timeout",
                N_("the token endpoint did not answer within %(seconds)s s"),
                seconds=f"{timeout:g}",
            )
        else:
            why = Text(
                "token-endpoint-unreachable",
                N_("the token endpoint could not be reached (%(reason)s)"),
                reason=str(reason),
            )
        raise OAuth2Error(
            why, account_id=account_id, host=parts.hostname, endpoint_down=True, fix=_check_reachable()
        ) from None


def _check_reachable() -> Text:
    return Text(
        "fix-token-endpoint-reachable",
        N_("Check the token URL and that this server can reach it (firewall, proxy); then try again."),
    )


def _check_token_url() -> Text:
    return Text("fix-token-url", N_("Check the token URL: it must be the provider's OAuth2 token endpoint."))


def _id_token_email(id_token: t.Any) -> str | None:
    """The address in an id_token received straight from the token endpoint over TLS.

    OpenID Connect Core 3.1.3.7 lets a client that got the id_token directly
    from the token endpoint trust TLS instead of the signature; it is only
    used to fill in or compare the account's login.
    """
    if not isinstance(id_token, str) or id_token.count(".") != 2:
        return None
    payload = id_token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, TypeError):
        return None
    if not isinstance(claims, dict):
        return None
    for name in ("email", "preferred_username", "upn"):
        value = claims.get(name)
        if isinstance(value, str) and "@" in value:
            return value
    return None


def _missing_refresh_token(grant: Grant, account_id: int | None) -> OAuth2Error:
    return OAuth2Error(
        Text("no-refresh-token", N_("the account has no refresh token yet")),
        account_id=account_id,
        host=grant.endpoint_host,
        fix=Text(
            "fix-get-refresh-token",
            N_("Sign in with the provider in the account form (or give a refresh token) to get one."),
        ),
    )
