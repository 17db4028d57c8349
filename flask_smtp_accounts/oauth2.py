"""OAuth2 for SMTP: access tokens from Microsoft, Google or any token endpoint, and SASL XOAUTH2.

Microsoft 365 stops accepting passwords for SMTP AUTH at the end of 2026
and Google already refuses them without an app password, so an account
can log in with an OAuth2 access token instead (``auth="oauth2"``). The
token comes from one of two grants:

- ``app`` (Microsoft app-only): client credentials of an app registration
  with the ``SMTP.SendAsApp`` permission, scope
  ``https://outlook.office365.com/.default``;
- ``delegated`` (Microsoft and Google): a refresh token that a person got
  by signing in once (see :func:`authorization_url` and
  :func:`exchange_code`), exchanged for access tokens as needed.

Access tokens live in memory only (:class:`AccessTokens`, one per app),
never in the database or a log, and are renewed shortly before they
expire. When a provider rotates the refresh token, the new one is stored
encrypted on the account. The token endpoint is spoken to with
``urllib.request``: two form posts do not justify a dependency.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import http.client
import ipaddress
import json
import logging
import secrets
import smtplib
import ssl
import threading
import time
import typing as t
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

import sqlalchemy as sa

from . import deadlines
from .errors import DeliveryError, OAuth2Error
from .texts import N_, Text

if t.TYPE_CHECKING:
    from .crypto import Vault
    from .models import AccountInfo, Models

logger = logging.getLogger(__name__)

PROVIDER_CHOICES = ("microsoft", "google", "custom")
FLOW_CHOICES = ("app", "delegated")

#: Scope of Microsoft's app-only (client credentials) tokens for SMTP.
MICROSOFT_APP_SCOPE = "https://outlook.office365.com/.default"
#: Scope of Microsoft's delegated tokens for SMTP.
MICROSOFT_DELEGATED_SCOPE = "https://outlook.office.com/SMTP.Send offline_access"
#: Scope of Google's tokens for SMTP (Gmail accepts no narrower one).
GOOGLE_SCOPE = "https://mail.google.com/"


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


#: Tenant used for Microsoft delegated sign-in when the account names none.
MICROSOFT_DEFAULT_TENANT = "common"


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


# --- what an account asks for ---------------------------------------------------


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


def token_url_of(account: AccountInfo, providers: Providers = PROVIDERS) -> str:
    """The token endpoint of an account: the provider's, or the one it names."""
    provider = providers.get(account.oauth_provider)
    if provider is None:
        return account.oauth_token_url
    tenant = account.oauth_tenant or MICROSOFT_DEFAULT_TENANT
    return provider.token_url.format(tenant=urllib.parse.quote(tenant, safe=""))


def authorize_url_of(account: AccountInfo, providers: Providers = PROVIDERS) -> str:
    """The authorization endpoint (for signing in), or ``""`` when a custom provider names none."""
    provider = providers.get(account.oauth_provider)
    if provider is None:
        return account.oauth_authorize_url
    tenant = account.oauth_tenant or MICROSOFT_DEFAULT_TENANT
    return provider.authorize_url.format(tenant=urllib.parse.quote(tenant, safe=""))


def scope_of(account: AccountInfo, providers: Providers = PROVIDERS) -> str:
    """The scope the account's tokens are asked for: its own, or the provider's for its flow."""
    if account.oauth_scope:
        return account.oauth_scope
    provider = providers.get(account.oauth_provider)
    if provider is None:
        return ""
    if account.oauth_flow == "app":
        return provider.app_scope or ""
    return provider.delegated_scope


def grant_of(
    account: AccountInfo, vault: Vault, refresh_token: str | None = None, providers: Providers = PROVIDERS
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


# --- talking to the token endpoint ---------------------------------------------------


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


#: Lifetime assumed when a token endpoint does not say (RFC 6749 makes ``expires_in`` optional).
DEFAULT_LIFETIME = 3600.0


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
    status: int
    try:
        status, raw = deadlines.post(
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
            raise OAuth2Error(
                Text(
                    "token-endpoint-timeout",
                    N_("the token endpoint did not answer within %(seconds)s s"),
                    seconds=f"{timeout:g}",
                ),
                account_id=account_id,
                host=parts.hostname,
                temporary=True,
                fix=_check_reachable(),
            ) from None
        raise OAuth2Error(
            Text(
                "token-endpoint-unreachable",
                N_("the token endpoint could not be reached (%(reason)s)"),
                reason=str(reason),
            ),
            account_id=account_id,
            host=parts.hostname,
            temporary=True,
            fix=_check_reachable(),
        ) from None
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
            host=parts.hostname,
            status=status,
            temporary=status >= 500,
            fix=_check_token_url(),
        ) from None
    if status != 200 or "error" in answer:
        raise explain_token_error(answer, status, grant, account_id, grant_type=form.get("grant_type", ""))
    access_token = answer.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise OAuth2Error(
            Text("token-answer-without-token", N_("the token endpoint answered without an access token")),
            account_id=account_id,
            host=parts.hostname,
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


def _aadsts(description: str) -> str | None:
    """The ``AADSTSnnnn`` code at the start of a Microsoft error description."""
    if description.startswith("AADSTS"):
        return description.split(":", 1)[0]
    return None


def _sign_in_again() -> Text:
    return Text(
        "fix-sign-in-again",
        N_(
            "Sign in again with the provider in the account form (Sign in with Microsoft / Google)"
            " to store a new refresh token."
        ),
    )


def explain_token_error(
    answer: t.Mapping[str, t.Any], status: int, grant: Grant, account_id: int | None, *, grant_type: str = ""
) -> OAuth2Error:
    """Turn a token endpoint's error answer into an :class:`OAuth2Error` whose fix a person can follow.

    ``grant_type`` is the request's (``authorization_code`` when a sign-in's
    code was being traded: a refused code is not a refused refresh token).
    """
    error = str(answer.get("error") or f"HTTP {status}")
    description = str(answer.get("error_description") or "").strip()
    first_line = description.splitlines()[0] if description else ""
    code = _aadsts(first_line)
    lowered = first_line.lower()
    microsoft = grant.provider == "microsoft" or code is not None
    google = grant.provider == "google"
    temporary = False
    reason: Text
    fix: Text
    if (
        error == "consent_required"
        or code in {"AADSTS65001", "AADSTS65004", "AADSTS90094"}
        or (error == "invalid_grant" and "consent" in lowered)
    ):
        reason = Text(
            "consent-missing",
            N_("consent is missing: nobody has allowed this app to send mail for the mailbox"),
        )
        if microsoft:
            fix = Text(
                "fix-grant-admin-consent",
                N_(
                    "An administrator must grant consent: Microsoft Entra admin center > App registrations > the app"
                    " > API permissions > Grant admin consent (SMTP.Send for sign-in, or Office 365 Exchange Online"
                    " SMTP.SendAsApp for app-only); then sign in again."
                ),
            )
        else:
            fix = Text(
                "fix-allow-mail-access",
                N_("Sign in again and allow access to mail (scope https://mail.google.com/ for Google)."),
            )
    elif error == "invalid_grant" and grant_type == "authorization_code":
        reason = Text(
            "authorization-code-refused",
            N_(
                "the authorization code was refused (used already, expired, or the PKCE verifier does not match)"
            ),
        )
        fix = Text("fix-sign-in-from-the-start", N_("Start the sign-in again from the account form."))
    elif error == "invalid_grant" and (
        code in {"AADSTS700082", "AADSTS70008", "AADSTS700084", "AADSTS50173"} or "expired" in lowered
    ):
        reason = Text("refresh-token-expired", N_("the refresh token has expired or was revoked"))
        if google:
            fix = Text(
                "fix-sign-in-again-google-testing",
                N_(
                    "Sign in again with the provider in the account form (Sign in with Microsoft / Google)"
                    " to store a new refresh token. A Google Cloud app whose publishing status is 'Testing' gets"
                    " refresh tokens that expire after 7 days: publish it (OAuth consent screen > Publish app)."
                ),
            )
        elif code == "AADSTS50173":
            fix = Text(
                "fix-sign-in-again-password-changed",
                N_(
                    "The user's password changed, which revoked the sign-in. Sign in again with the provider in the"
                    " account form (Sign in with Microsoft / Google) to store a new refresh token."
                ),
            )
        else:
            fix = _sign_in_again()
    elif error == "invalid_grant" and grant.flow == "delegated":
        reason = Text(
            "refresh-token-refused",
            N_("the refresh token was refused (revoked, or issued to another client id)"),
        )
        fix = _sign_in_again()
    elif error == "invalid_client" or code in {"AADSTS7000215", "AADSTS7000222", "AADSTS700016"}:
        if code == "AADSTS7000222":
            reason = Text("client-secret-expired", N_("the client secret has expired"))
        elif code == "AADSTS700016":
            reason = Text("client-id-unknown", N_("the client id is not known in this tenant"))
        else:
            reason = Text("client-refused", N_("the client id or the client secret was refused"))
        if microsoft:
            fix = Text(
                "fix-client-secret-microsoft",
                N_(
                    "Check the client id and tenant, and enter a valid client secret (create a new one in Microsoft"
                    " Entra admin center > App registrations > the app > Certificates & secrets). Enter the secret's"
                    " value, not its id."
                ),
            )
        elif google:
            fix = Text(
                "fix-client-secret-google",
                N_(
                    "Check the client id and tenant, and enter a valid client secret (create a new one in Google Cloud"
                    " console > APIs & Services > Credentials). Enter the secret's value, not its id."
                ),
            )
        else:
            fix = Text(
                "fix-client-secret",
                N_(
                    "Check the client id and tenant, and enter a valid client secret (create a new one in the"
                    " provider's console). Enter the secret's value, not its id."
                ),
            )
    elif error == "unauthorized_client":
        reason = Text("grant-not-allowed", N_("this client may not use this kind of grant"))
        fix = Text(
            "fix-grant-permissions",
            N_(
                "For app-only access, the app registration needs a client secret and the application permission"
                " SMTP.SendAsApp; for sign-in, the refresh token must come from the same client id."
            ),
        )
    elif error == "invalid_scope":
        reason = Text("scope-refused", N_("the scope was refused"))
        fix = Text(
            "fix-scope",
            N_(
                "Use the scope %(app_scope)s for Microsoft app-only, '%(delegated_scope)s' for Microsoft sign-in,"
                " %(google_scope)s for Google."
            ),
            app_scope=MICROSOFT_APP_SCOPE,
            delegated_scope=MICROSOFT_DELEGATED_SCOPE,
            google_scope=GOOGLE_SCOPE,
        )
    elif code in {"AADSTS90002", "AADSTS900023", "AADSTS90013"}:
        reason = Text("tenant-not-found", N_("the tenant was not found"))
        fix = Text(
            "fix-tenant",
            N_(
                "Enter the directory (tenant) id or the tenant's domain as shown on the app registration's Overview page."
            ),
        )
    elif error in {"temporarily_unavailable", "server_error"} or status >= 500:
        reason = Text("token-endpoint-unavailable", N_("the token endpoint is unavailable"))
        fix = Text("fix-try-later", N_("Try again later."))
        temporary = True
    else:
        reason = Text("token-request-refused", N_("the token endpoint refused the request"))
        fix = Text(
            "fix-oauth2-settings",
            N_(
                "Check the account's OAuth2 settings (provider, tenant, client id and secret, token URL, scope)."
            ),
        )
    reply = f"{error}: {first_line}" if first_line else error
    return OAuth2Error(
        reason,
        account_id=account_id,
        host=grant.endpoint_host,
        error=error,
        description=first_line,
        status=status,
        reply=reply,
        fix=fix,
        temporary=temporary,
    )


# --- signing in (authorization code with PKCE) ----------------------------------------


def pkce_pair() -> tuple[str, str]:
    """A PKCE ``(verifier, S256 challenge)`` pair (RFC 7636)."""
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest())
        .rstrip(b"=")
        .decode("ascii")
    )
    return verifier, challenge


def sign_in_scope(account: AccountInfo, providers: Providers = PROVIDERS) -> str:
    """What a person is asked to allow: the SMTP scope plus (for known providers) their address."""
    provider = providers.get(account.oauth_provider)
    scope = scope_of(account, providers)
    if provider is None:
        return scope
    extra = [s for s in provider.sign_in_scope.split() if s not in scope.split()]
    return " ".join([*scope.split(), *extra])


def authorization_url(
    account: AccountInfo,
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


# --- XOAUTH2 ----------------------------------------------------------------------


def xoauth2_response(login: str, access_token: str) -> str:
    """The SASL XOAUTH2 initial client response (before base64)."""
    return f"user={login}\x01auth=Bearer {access_token}\x01\x01"


def offers_xoauth2(smtp: smtplib.SMTP) -> bool:
    return smtp.has_extn("auth") and "XOAUTH2" in smtp.esmtp_features.get("auth", "").upper().split()


def login_xoauth2(
    smtp: smtplib.SMTP,
    account: AccountInfo,
    tokens: AccessTokens,
    *,
    timeout: float,
    transcript: t.Any = None,
) -> None:
    """AUTH XOAUTH2 with the account's access token.

    A cached token the server refuses (revoked, or the clocks disagree) is
    dropped and the login tried once more with a new one.
    """
    if not offers_xoauth2(smtp):
        raise DeliveryError(
            "login",
            Text("no-xoauth2", N_("the server does not offer AUTH XOAUTH2, which an OAuth2 account needs")),
            account_id=account.id or None,
            host=account.host,
            port=account.port,
        )
    token = tokens.get(account, timeout=timeout, transcript=transcript)
    try:
        _auth(smtp, account.login, token)
    except smtplib.SMTPAuthenticationError:
        if token.fresh:
            raise
        tokens.forget(account)
        if transcript is not None:
            transcript.event("the server refused the cached access token; fetching a new one")
        _auth(smtp, account.login, tokens.get(account, timeout=timeout, transcript=transcript))


def _auth(smtp: smtplib.SMTP, login: str, token: AccessToken) -> None:
    initial = xoauth2_response(login, token.value)

    def respond(challenge: bytes | None = None) -> str:
        # A 334 after the initial response carries the server's JSON error; the reply to it is empty.
        return initial if challenge is None else ""

    smtp.auth("XOAUTH2", respond, initial_response_ok=True)  # type: ignore[arg-type]


# --- the per-app cache ----------------------------------------------------------------


@dataclass(frozen=True)
class AccessToken:
    """An access token handed to one connection. Holds a secret: never log it."""

    value: str = field(repr=False)
    expires_at: float
    #: Fetched for this request (``False``: from the cache).
    fresh: bool


@dataclass
class _Entry:
    value: str = field(repr=False)
    expires_at: float
    lifetime: float
    #: The stored refresh tokens this access token belongs to (before and after a rotation).
    refresh_tokens: frozenset[str] = field(default_factory=frozenset, repr=False)


class AccessTokens:
    """Access tokens of one app's OAuth2 accounts, in memory, renewed shortly before they expire.

    Thread-safe: concurrent connections of one account wait for one fetch.
    An account not saved yet (id 0: a check before saving) is never cached,
    so that its check really asks the endpoint.

    A provider may rotate the refresh token on use and void the old one.
    The new one is saved with ``store_refresh_token(account_id,
    ciphertext)``; it is also remembered here (by a hash of the old one), so
    that a failed save is retried on the next fetch and a check before
    saving can hand the new token to the save (:meth:`latest_refresh_token`).
    """

    #: Renew this many seconds before expiry (at most a tenth of the token's lifetime).
    margin_s = 300.0
    #: Rotations remembered at most.
    max_rotations = 1000

    def __init__(
        self,
        vault: Vault,
        store_refresh_token: t.Callable[[int, str], None],
        *,
        providers: Providers = PROVIDERS,
        clock: t.Callable[[], float] = time.time,
    ) -> None:
        self._vault = vault
        self._store = store_refresh_token
        self.providers = providers
        self.clock = clock
        self._lock = threading.Lock()
        self._entries: dict[tuple[t.Any, ...], _Entry] = {}
        self._fetching: dict[tuple[t.Any, ...], threading.Lock] = {}
        self._rotations: dict[str, str] = {}
        #: How many times a token endpoint was asked (for tests and benchmarks).
        self.fetches = 0

    def _key(self, account: AccountInfo) -> tuple[t.Any, ...]:
        return (
            account.id,
            account.oauth_provider,
            account.oauth_flow,
            token_url_of(account, self.providers),
            account.oauth_client_id,
            scope_of(account, self.providers),
            account.oauth_client_secret_encrypted,
        )

    def _stored_refresh_token(self, account: AccountInfo) -> str | None:
        if account.oauth_flow != "delegated" or not account.oauth_refresh_token_encrypted:
            return None
        return self._vault.decrypt(account.oauth_refresh_token_encrypted)

    def get(
        self, account: AccountInfo, *, timeout: float, renew: bool = False, transcript: t.Any = None
    ) -> AccessToken:
        """A valid access token for ``account``; raises :class:`OAuth2Error`."""
        stored = self._stored_refresh_token(account)
        if not account.id:
            token = self._fetch(account, self.latest_refresh_token(stored), timeout)
            self._report(transcript, account, token.expires_in, fresh=True)
            return AccessToken(token.access_token, self.clock() + token.expires_in, fresh=True)
        key = self._key(account)
        if not renew:
            cached = self._valid(key, stored)
            if cached is not None:
                self._report(transcript, account, cached.expires_at - self.clock(), fresh=False)
                return AccessToken(cached.value, cached.expires_at, fresh=False)
        with self._lock:
            fetching = self._fetching.setdefault(key, threading.Lock())
        with fetching:
            if not renew:
                cached = self._valid(key, stored)
                if cached is not None:  # another thread fetched it meanwhile
                    return AccessToken(cached.value, cached.expires_at, fresh=False)
            refresh_token = self.latest_refresh_token(stored)
            if refresh_token != stored:  # rotated earlier, but saving it failed: try again
                self._save_rotated(account.id, refresh_token)
            token = self._fetch(account, refresh_token, timeout)
            known = frozenset(rt for rt in (stored, refresh_token, token.refresh_token) if rt)
            entry = _Entry(token.access_token, self.clock() + token.expires_in, token.expires_in, known)
            with self._lock:
                self._entries[key] = entry
        self._report(transcript, account, token.expires_in, fresh=True)
        return AccessToken(entry.value, entry.expires_at, fresh=True)

    def latest_refresh_token(self, refresh_token: str | None) -> str | None:
        """``refresh_token``, or the one the provider rotated it to (followed to the newest)."""
        with self._lock:
            for _ in range(len(self._rotations) + 1):
                if refresh_token is None:
                    break
                newer = self._rotations.get(_digest(refresh_token))
                if newer is None:
                    break
                refresh_token = newer
        return refresh_token

    def forget(self, account: AccountInfo | int | None = None) -> None:
        """Drop the cached token of one account (an ``AccountInfo`` or an id), or of all."""
        account_id = account if isinstance(account, int) or account is None else account.id
        with self._lock:
            if account_id is None:
                self._entries.clear()
            else:
                for key in [k for k in self._entries if k[0] == account_id]:
                    del self._entries[key]

    def _valid(self, key: tuple[t.Any, ...], stored: str | None) -> _Entry | None:
        with self._lock:
            entry = self._entries.get(key)
        if entry is None:
            return None
        if stored is not None and stored not in entry.refresh_tokens:
            return None  # someone signed in again: the token may belong to another mailbox
        margin = min(self.margin_s, entry.lifetime / 10)
        if self.clock() >= entry.expires_at - margin:
            return None
        return entry

    def _fetch(self, account: AccountInfo, refresh_token: str | None, timeout: float) -> Token:
        grant = grant_of(account, self._vault, refresh_token, self.providers)
        with self._lock:
            self.fetches += 1
        token = fetch_token(grant, timeout=timeout, account_id=account.id or None)
        if token.refresh_token and refresh_token and token.refresh_token != refresh_token:
            with self._lock:
                if len(self._rotations) >= self.max_rotations:
                    self._rotations.pop(next(iter(self._rotations)))
                self._rotations[_digest(refresh_token)] = token.refresh_token
            if account.id:
                self._save_rotated(account.id, token.refresh_token)
        return token

    def _save_rotated(self, account_id: int, refresh_token: str | None) -> None:
        if not refresh_token:
            return
        try:
            self._store(account_id, self._vault.encrypt(refresh_token))
        except Exception as err:  # noqa: BLE001 - the token stays in memory; the next fetch saves it again
            # Only the class: a database error's text may quote the statement's parameters.
            logger.warning(
                "The rotated OAuth2 refresh token of SMTP account %s could not be stored (%s);"
                " it is kept in memory and stored on the next token fetch.",
                account_id,
                type(err).__name__,
            )

    def _report(self, transcript: t.Any, account: AccountInfo, valid_for: float, *, fresh: bool) -> None:
        if transcript is None:
            return
        host = urllib.parse.urlsplit(token_url_of(account, self.providers)).hostname
        how = f"fetched from {host}" if fresh else "cached"
        transcript.event(f"OAuth2 access token {how}, valid for {max(valid_for, 0):.0f} s more")


def store_refresh_token(engine: t.Any, models: Models, account_id: int, ciphertext: str) -> None:
    """Store a rotated refresh token (already encrypted) on its account, in a transaction of its own.

    Its own transaction, because the rotation happened whether or not the
    site's session commits. A plain UPDATE, not the ORM: the account's
    ``updated_at`` stays (a change there clears its logs), but the settings
    revision is bumped so that every process reads the new token.
    """
    from .models import SETTINGS_ID  # here: models imports validation, which imports this module

    account = models.Account.__table__
    settings = models.Settings.__table__
    with engine.begin() as conn:
        conn.execute(
            sa.update(account)
            .where(account.c.id == account_id)
            .values(oauth_refresh_token_encrypted=ciphertext)
        )
        conn.execute(
            sa.update(settings).where(settings.c.id == SETTINGS_ID).values(revision=settings.c.revision + 1)
        )


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()
