"""What a token endpoint's refusal means, and what a person does about it.

A token endpoint answers ``{"error": "invalid_grant", "error_description":
"AADSTS700082: ..."}``; a person needs "the refresh token has expired: sign
in again". :func:`explain_token_error` reads the answer once into a
:class:`Refusal` and asks the rules of :data:`RULES` in order; the first
that recognises it gives the reason and the fix, like ``hints.py`` does for
SMTP failures. Every sentence is a :class:`~flask_smtp_accounts.texts.Text`,
so the admin pages say it in the reader's language.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from ..errors import OAuth2Error
from ..texts import N_, Text
from .providers import GOOGLE_SCOPE, MICROSOFT_APP_SCOPE, MICROSOFT_DELEGATED_SCOPE

#: Microsoft's codes for a missing consent.
_CONSENT_CODES = {"AADSTS65001", "AADSTS65004", "AADSTS90094"}
#: Microsoft's codes for an expired or revoked refresh token (AADSTS50173: the password changed).
_EXPIRED_CODES = {"AADSTS700082", "AADSTS70008", "AADSTS700084", "AADSTS50173"}
#: Microsoft's codes for a refused client (AADSTS7000222: an expired secret; AADSTS700016: an unknown id).
_CLIENT_CODES = {"AADSTS7000215", "AADSTS7000222", "AADSTS700016"}
#: Microsoft's codes for a tenant that does not exist.
_TENANT_CODES = {"AADSTS90002", "AADSTS900023", "AADSTS90013"}


@dataclass(frozen=True)
class Refusal:
    """A token endpoint's error answer, with what the rules look at read out once."""

    #: The OAuth2 ``error`` (``invalid_grant``...), or ``HTTP <status>`` when the answer has none.
    error: str
    #: The first line of ``error_description`` (Microsoft adds trace ids on later lines).
    description: str
    status: int
    #: ``microsoft``, ``google`` or ``custom``.
    provider: str
    #: ``app`` or ``delegated``.
    flow: str
    #: The request's grant type (``authorization_code`` when a sign-in's code was traded).
    grant_type: str

    @property
    def code(self) -> str | None:
        """The ``AADSTSnnnn`` code at the start of a Microsoft description."""
        if self.description.startswith("AADSTS"):
            return self.description.split(":", 1)[0]
        return None

    @property
    def microsoft(self) -> bool:
        return self.provider == "microsoft" or self.code is not None

    @property
    def says(self) -> str:
        """The description in lower case, for the rules that look for a word in it."""
        return self.description.lower()


@dataclass(frozen=True)
class Explanation:
    reason: Text
    fix: Text
    #: The endpoint could not answer: asking again later may succeed, no person needs to act.
    endpoint_down: bool = False


Rule = t.Callable[[Refusal], Explanation | None]


def _sign_in_again() -> Text:
    return Text(
        "fix-sign-in-again",
        N_(
            "Sign in again with the provider in the account form (Sign in with Microsoft / Google)"
            " to store a new refresh token."
        ),
    )


def _consent(refusal: Refusal) -> Explanation | None:
    """Nobody has allowed the app to send for the mailbox (Microsoft: an administrator must)."""
    if not (
        refusal.error == "consent_required"
        or refusal.code in _CONSENT_CODES
        or (refusal.error == "invalid_grant" and "consent" in refusal.says)
    ):
        return None
    reason = Text(
        "consent-missing", N_("consent is missing: nobody has allowed this app to send mail for the mailbox")
    )
    if refusal.microsoft:
        return Explanation(
            reason,
            Text(
                "fix-grant-admin-consent",
                N_(
                    "An administrator must grant consent: Microsoft Entra admin center > App registrations > the app"
                    " > API permissions > Grant admin consent (SMTP.Send for sign-in, or Office 365 Exchange Online"
                    " SMTP.SendAsApp for app-only); then sign in again."
                ),
            ),
        )
    return Explanation(
        reason,
        Text(
            "fix-allow-mail-access",
            N_("Sign in again and allow access to mail (scope https://mail.google.com/ for Google)."),
        ),
    )


def _code_refused(refusal: Refusal) -> Explanation | None:
    """A sign-in's authorization code was refused: that is not a refused refresh token."""
    if refusal.error != "invalid_grant" or refusal.grant_type != "authorization_code":
        return None
    return Explanation(
        Text(
            "authorization-code-refused",
            N_(
                "the authorization code was refused (used already, expired, or the PKCE verifier does not match)"
            ),
        ),
        Text("fix-sign-in-from-the-start", N_("Start the sign-in again from the account form.")),
    )


def _refresh_token_expired(refusal: Refusal) -> Explanation | None:
    """The refresh token expired or was revoked; Google and a changed password have a word of their own."""
    if refusal.error != "invalid_grant" or not (refusal.code in _EXPIRED_CODES or "expired" in refusal.says):
        return None
    reason = Text("refresh-token-expired", N_("the refresh token has expired or was revoked"))
    if refusal.provider == "google":
        fix = Text(
            "fix-sign-in-again-google-testing",
            N_(
                "Sign in again with the provider in the account form (Sign in with Microsoft / Google)"
                " to store a new refresh token. A Google Cloud app whose publishing status is 'Testing' gets"
                " refresh tokens that expire after 7 days: publish it (OAuth consent screen > Publish app)."
            ),
        )
    elif refusal.code == "AADSTS50173":
        fix = Text(
            "fix-sign-in-again-password-changed",
            N_(
                "The user's password changed, which revoked the sign-in. Sign in again with the provider in the"
                " account form (Sign in with Microsoft / Google) to store a new refresh token."
            ),
        )
    else:
        fix = _sign_in_again()
    return Explanation(reason, fix)


def _refresh_token_refused(refusal: Refusal) -> Explanation | None:
    """A delegated account's refresh token was refused for another reason (revoked, another client id)."""
    if refusal.error != "invalid_grant" or refusal.flow != "delegated":
        return None
    return Explanation(
        Text(
            "refresh-token-refused",
            N_("the refresh token was refused (revoked, or issued to another client id)"),
        ),
        _sign_in_again(),
    )


def _secret_console(refusal: Refusal) -> Text:
    """Where the provider's console makes a new client secret."""
    if refusal.microsoft:
        return Text(
            "console-microsoft",
            N_("Microsoft Entra admin center > App registrations > the app > Certificates & secrets"),
        )
    if refusal.provider == "google":
        return Text("console-google", N_("Google Cloud console > APIs & Services > Credentials"))
    return Text("console-other", N_("the provider's console"))


def _client_refused(refusal: Refusal) -> Explanation | None:
    """The client id or secret was refused (an expired secret, an id from another tenant...)."""
    if refusal.error != "invalid_client" and refusal.code not in _CLIENT_CODES:
        return None
    if refusal.code == "AADSTS7000222":
        reason = Text("client-secret-expired", N_("the client secret has expired"))
    elif refusal.code == "AADSTS700016":
        reason = Text("client-id-unknown", N_("the client id is not known in this tenant"))
    else:
        reason = Text("client-refused", N_("the client id or the client secret was refused"))
    fix = Text(
        "fix-client-secret",
        N_(
            "Check the client id and tenant, and enter a valid client secret (create a new one in %(console)s)."
            " Enter the secret's value, not its id."
        ),
        console=_secret_console(refusal),
    )
    return Explanation(reason, fix)


def _grant_not_allowed(refusal: Refusal) -> Explanation | None:
    """The app registration may not use this grant (no SMTP.SendAsApp, or another client's refresh token)."""
    if refusal.error != "unauthorized_client":
        return None
    return Explanation(
        Text("grant-not-allowed", N_("this client may not use this kind of grant")),
        Text(
            "fix-grant-permissions",
            N_(
                "For app-only access, the app registration needs a client secret and the application permission"
                " SMTP.SendAsApp; for sign-in, the refresh token must come from the same client id."
            ),
        ),
    )


def _scope_refused(refusal: Refusal) -> Explanation | None:
    """The scope is not one the provider gives SMTP tokens for."""
    if refusal.error != "invalid_scope":
        return None
    return Explanation(
        Text("scope-refused", N_("the scope was refused")),
        Text(
            "fix-scope",
            N_(
                "Use the scope %(app_scope)s for Microsoft app-only, '%(delegated_scope)s' for Microsoft sign-in,"
                " %(google_scope)s for Google."
            ),
            app_scope=MICROSOFT_APP_SCOPE,
            delegated_scope=MICROSOFT_DELEGATED_SCOPE,
            google_scope=GOOGLE_SCOPE,
        ),
    )


def _tenant_not_found(refusal: Refusal) -> Explanation | None:
    """Microsoft knows no such tenant (a typo, or a tenant name where its id is needed)."""
    if refusal.code not in _TENANT_CODES:
        return None
    return Explanation(
        Text("tenant-not-found", N_("the tenant was not found")),
        Text(
            "fix-tenant",
            N_(
                "Enter the directory (tenant) id or the tenant's domain as shown on the app registration's Overview page."
            ),
        ),
    )


def _unavailable(refusal: Refusal) -> Explanation | None:
    """The endpoint is down or overloaded: the only refusal that asking again later may cure."""
    if refusal.error not in {"temporarily_unavailable", "server_error"} and refusal.status < 500:
        return None
    return Explanation(
        Text("token-endpoint-unavailable", N_("the token endpoint is unavailable")),
        Text("fix-try-later", N_("Try again later.")),
        endpoint_down=True,
    )


#: Asked in order; the first that recognises the refusal explains it.
RULES: tuple[Rule, ...] = (
    _consent,
    _code_refused,
    _refresh_token_expired,
    _refresh_token_refused,
    _client_refused,
    _grant_not_allowed,
    _scope_refused,
    _tenant_not_found,
    _unavailable,
)

_UNKNOWN = Explanation(
    Text("token-request-refused", N_("the token endpoint refused the request")),
    Text(
        "fix-oauth2-settings",
        N_("Check the account's OAuth2 settings (provider, tenant, client id and secret, token URL, scope)."),
    ),
)


def explain(refusal: Refusal) -> Explanation:
    """The reason and fix of ``refusal``: the first rule's that knows it, or a general one."""
    for rule in RULES:
        explanation = rule(refusal)
        if explanation is not None:
            return explanation
    return _UNKNOWN


def explain_token_error(
    answer: t.Mapping[str, t.Any],
    status: int,
    *,
    provider: str,
    flow: str,
    host: str | None,
    account_id: int | None,
    grant_type: str = "",
) -> OAuth2Error:
    """Turn a token endpoint's error answer into an :class:`OAuth2Error` whose fix a person can follow."""
    error = str(answer.get("error") or f"HTTP {status}")
    description = str(answer.get("error_description") or "").strip()
    first_line = description.splitlines()[0] if description else ""
    refusal = Refusal(error, first_line, status, provider, flow, grant_type)
    explanation = explain(refusal)
    return OAuth2Error(
        explanation.reason,
        account_id=account_id,
        host=host,
        error=error,
        description=first_line,
        status=status,
        reply=f"{error}: {first_line}" if first_line else error,
        fix=explanation.fix,
        endpoint_down=explanation.endpoint_down,
    )
