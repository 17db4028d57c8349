"""Signing in with Microsoft or Google from the account form, to get a refresh token without leaving the site.

The authorization-code flow with PKCE (RFC 7636, S256):

1. :func:`start_sign_in` checks the form's fields, makes a ``state`` and
   a PKCE verifier, keeps them (with the form's fields) in the Flask
   session, encrypted with the extension's key, and returns the
   provider's authorization URL to redirect the browser to;
2. the person signs in at the provider, which redirects back to the
   site's callback with ``code`` and ``state``;
3. :func:`finish_sign_in` takes the pending sign-in out of the session
   (single use: a second callback with the same ``state`` finds nothing),
   trades the code and verifier for tokens, and :func:`save_signed_in`
   checks the account with the new refresh token and saves it; a failed
   check saves nothing.

The session is a cookie in Flask's default setup: what it holds is
encrypted with the extension's Fernet key, so the verifier and a client
secret typed into the form stay readable by the server only, and it
works whichever worker process the callback reaches.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import typing as t
from dataclasses import dataclass, field

from flask import current_app, session

from .account_fields import SETTABLE_FIELDS, AccountInfo
from .errors import EncryptionError, InvalidAccountError
from .errors import SignInError as SignInError  # importable from here too, as sites already do
from .oauth2 import (
    Grant,
    authorization_url,
    authorize_url_of,
    exchange_code,
    pkce_pair,
    scope_of,
    token_url_of,
)
from .texts import N_, Text
from .validation import TOKEN_DESTINATION, secret_needed_again, validate_account

if t.TYPE_CHECKING:
    from .api import SMTPAccountsAPI

#: Where pending sign-ins wait in the Flask session.
SESSION_KEY = "smtp_accounts_oauth2"
#: A sign-in must come back within this many seconds.
MAX_AGE_S = 600
#: Sign-ins pending at once per browser (several tabs); older ones are dropped.
MAX_PENDING = 3

#: The form fields a sign-in carries to the callback (the secrets travel apart, encrypted).
CARRIED_FIELDS = SETTABLE_FIELDS


@dataclass(frozen=True)
class SignedIn:
    """A finished sign-in: the account's fields from the form, and the tokens. Holds secrets."""

    #: 0: a new account.
    account_id: int
    fields: dict[str, t.Any]
    client_secret: str | None = field(repr=False)
    refresh_token: str = field(repr=False)
    #: The address the person signed in with, when the provider said.
    email: str | None


def _digest(state: str) -> str:
    return hashlib.sha256(state.encode("utf-8")).hexdigest()


def _oauth_view(fields: t.Mapping[str, t.Any]) -> AccountInfo:
    """An ``AccountInfo`` holding just what the provider's endpoints and scope depend on."""
    return AccountInfo(
        id=0,
        active=True,
        sender_name="",
        sender_email="",
        host="",
        port=0,
        security="",
        auth="oauth2",
        login=str(fields.get("login") or ""),
        verify_tls=True,
        oauth_provider=str(fields.get("oauth_provider") or ""),
        oauth_flow="delegated",
        oauth_tenant=str(fields.get("oauth_tenant") or "").strip(),
        oauth_client_id=str(fields.get("oauth_client_id") or "").strip(),
        oauth_token_url=str(fields.get("oauth_token_url") or "").strip(),
        oauth_authorize_url=str(fields.get("oauth_authorize_url") or "").strip(),
        oauth_scope=" ".join(str(fields.get("oauth_scope") or "").split()),
    )


def _stored_client_secret(ext: SMTPAccountsAPI, account_id: int, fields: t.Mapping[str, t.Any]) -> str | None:
    """The saved account's client secret, for a sign-in whose token endpoint is the one it was entered for.

    Raises :class:`InvalidAccountError` when the form names another token
    endpoint: a stored secret never goes where it was not entered for.
    """
    if not account_id:
        return None
    stored = ext.get_account(account_id).to_info()
    if not stored.oauth_client_secret_encrypted:
        return None
    providers = current_app.extensions["smtp_accounts"].config.oauth2_providers
    view = _oauth_view(fields)
    if token_url_of(stored, providers) != token_url_of(view, providers):
        moved = [
            name
            for name in TOKEN_DESTINATION
            if name != "auth" and getattr(stored, name) != getattr(view, name)
        ]
        raise secret_needed_again("oauth_client_secret", moved)
    return t.cast(
        str, current_app.extensions["smtp_accounts"].vault.decrypt(stored.oauth_client_secret_encrypted)
    )


def start_sign_in(
    ext: SMTPAccountsAPI,
    fields: t.Mapping[str, t.Any],
    *,
    account_id: int,
    client_secret: str | None,
    redirect_uri: str,
) -> str:
    """Check the form's fields, remember the sign-in in the session, and return the provider's URL.

    ``fields`` are the account form's fields (no secrets); ``client_secret``
    is the one typed into the form, ``None`` to use the stored one.
    Raises :class:`InvalidAccountError` naming the field to correct.
    """
    state_ = current_app.extensions["smtp_accounts"]
    carried = {name: fields[name] for name in CARRIED_FIELDS if name in fields}
    carried["auth"] = "oauth2"
    carried["oauth_flow"] = "delegated"
    has_secret = bool(client_secret) or bool(_stored_client_secret(ext, account_id, carried))
    values = {
        **carried,
        "id": account_id,
        "has_password": False,
        "has_oauth_client_secret": has_secret,
        "has_oauth_refresh_token": True,
    }
    values.setdefault("security", "starttls")
    # An empty login is allowed here: the sign-in fills it with the address the person signs in with.
    values["login"] = values.get("login") or "signing-in@example.invalid"
    validate_account(values)
    view = _oauth_view(carried)
    if not authorize_url_of(view, state_.config.oauth2_providers):
        raise InvalidAccountError("oauth_authorize_url", "is needed to sign in with a custom provider")
    state = secrets.token_urlsafe(32)
    verifier, challenge = pkce_pair()
    pending_sign_in = {
        "state": state,
        "verifier": verifier,
        "account_id": account_id,
        "fields": carried,
        "client_secret": client_secret or None,
        "redirect_uri": redirect_uri,
        "created": time.time(),
    }
    pending: dict[str, str] = dict(session.get(SESSION_KEY) or {})
    pending[_digest(state)] = state_.vault.encrypt(json.dumps(pending_sign_in))
    session[SESSION_KEY] = dict(list(pending.items())[-MAX_PENDING:])
    return authorization_url(
        view,
        redirect_uri=redirect_uri,
        state=state,
        code_challenge=challenge,
        providers=state_.config.oauth2_providers,
    )


def finish_sign_in(ext: SMTPAccountsAPI, args: t.Mapping[str, str]) -> SignedIn:
    """Take the pending sign-in named by the callback's ``state`` and trade its code for tokens.

    The pending sign-in leaves the session first, whatever follows: a
    forged, replayed or late callback raises :class:`SignInError` (or
    :class:`~flask_smtp_accounts.OAuth2Error` from the token endpoint) and
    nothing is stored.
    """
    state_ = current_app.extensions["smtp_accounts"]
    given_state = args.get("state") or ""
    pending: dict[str, str] = dict(session.get(SESSION_KEY) or {})
    blob = pending.pop(_digest(given_state), None) if given_state else None
    session[SESSION_KEY] = pending
    if blob is None:
        raise SignInError(
            Text(
                "sign-in-unknown",
                N_(
                    "This sign-in answer does not match a sign-in started from this browser (it was forged, or used"
                    " already). Nothing was stored; start the sign-in again from the account form."
                ),
            )
        )
    try:
        data = json.loads(state_.vault.decrypt(blob))
    except (EncryptionError, ValueError):
        raise SignInError(
            Text(
                "sign-in-unreadable",
                N_("The pending sign-in cannot be read (was the encryption key changed?). Start it again."),
            )
        ) from None
    if not hmac.compare_digest(str(data.get("state", "")), given_state):
        raise SignInError(
            Text(
                "sign-in-mismatch",
                N_("The sign-in answer does not match the sign-in started here. Nothing was stored."),
            )
        )
    if time.time() - float(data["created"]) > MAX_AGE_S:
        raise SignInError(
            Text(
                "sign-in-too-late",
                N_("The sign-in took longer than %(minutes)s minutes. Nothing was stored; start it again."),
                minutes=MAX_AGE_S // 60,
            )
        )
    if args.get("error"):
        detail = args.get("error_description") or ""
        raise SignInError(
            Text(
                "sign-in-refused",
                N_("The provider did not sign you in (%(error)s). Nothing was stored."),
                error=args["error"] + (": " + detail if detail else ""),
            )
        )
    code = args.get("code")
    if not code:
        raise SignInError(
            Text(
                "sign-in-no-code",
                N_("The provider's answer holds no authorization code. Nothing was stored."),
            )
        )
    account_id = int(data["account_id"])
    fields = dict(data["fields"])
    try:
        client_secret = data.get("client_secret") or _stored_client_secret(ext, account_id, fields) or ""
    except InvalidAccountError:
        raise SignInError(
            Text(
                "sign-in-endpoint-moved",
                N_(
                    "The account's token endpoint changed during the sign-in. Nothing was stored; start it again."
                ),
            )
        ) from None
    view = _oauth_view(fields)
    providers = state_.config.oauth2_providers
    grant = Grant(
        provider=view.oauth_provider,
        flow="delegated",
        token_url=token_url_of(view, providers),
        client_id=view.oauth_client_id,
        client_secret=client_secret,
        scope=scope_of(view, providers),
    )
    timeout = state_.directory.settings().timeout_s
    token = exchange_code(
        grant,
        code=code,
        code_verifier=data["verifier"],
        redirect_uri=data["redirect_uri"],
        timeout=timeout,
        account_id=account_id or None,
    )
    if not token.refresh_token:
        if view.oauth_provider == "google":
            raise SignInError(
                Text(
                    "sign-in-no-refresh-token-google",
                    N_(
                        "The provider signed you in but gave no refresh token, so the site could not send later."
                        " Check that the app may ask for offline access (scope offline_access for Microsoft)."
                        " Google gives one only with access_type=offline on a new consent."
                    ),
                )
            )
        raise SignInError(
            Text(
                "sign-in-no-refresh-token",
                N_(
                    "The provider signed you in but gave no refresh token, so the site could not send later."
                    " Check that the app may ask for offline access (scope offline_access for Microsoft)."
                ),
            )
        )
    return SignedIn(account_id, fields, data.get("client_secret") or None, token.refresh_token, token.email)


def save_signed_in(ext: SMTPAccountsAPI, signed_in: SignedIn) -> t.Any:
    """Check the account with the new refresh token and save it (a failed check saves nothing).

    An empty login is filled with the address the person signed in with.
    Raises :class:`~flask_smtp_accounts.AccountCheckFailed` or
    :class:`~flask_smtp_accounts.InvalidAccountError`.
    """
    fields = dict(signed_in.fields)
    if not fields.get("login") and signed_in.email:
        fields["login"] = signed_in.email
    fields["oauth_refresh_token"] = signed_in.refresh_token
    if signed_in.client_secret:
        fields["oauth_client_secret"] = signed_in.client_secret
    if signed_in.account_id:
        return ext.update_account(signed_in.account_id, **fields)
    return ext.add_account(**fields)
