"""SMTP AUTH: the SASL exchange with UTF-8 credentials, CRAM-MD5, and XOAUTH2 with an OAuth2 access token.

smtplib's own AUTH encodes credentials as ASCII (CPython issue 73936),
which refuses any password with a non-ASCII character; :class:`SASLClient`
replaces it for the SMTP classes of ``connection.py`` and marks the
exchange (``_in_auth``) so that their transcript redacts it.
"""

from __future__ import annotations

import base64
import hmac
import smtplib
import typing as t

from .errors import DeliveryError
from .texts import N_, Text

if t.TYPE_CHECKING:
    from .models import AccountInfo
    from .oauth2.cache import AccessToken, AccessTokens

#: Challenges answered at most in one AUTH exchange: a server that keeps asking is not waited on forever.
_MAX_AUTH_CHALLENGES = 5


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


class SASLClient:
    """smtplib's AUTH methods, with UTF-8 credentials (RFC 4616); mixed into an ``smtplib.SMTP``."""

    #: True while the AUTH exchange runs: what is sent and the 334 challenges are secret then.
    _in_auth = False
    _auth_challenge_count = 0

    def auth(
        self, mechanism: str, authobject: t.Any, *, initial_response_ok: bool = True
    ) -> tuple[int, bytes]:
        """smtplib's AUTH, but with UTF-8 credentials and the exchange marked for redaction."""
        self._in_auth = True
        try:
            mechanism = mechanism.upper()
            initial = authobject() if initial_response_ok else None
            if initial is not None:
                code, reply = self.docmd("AUTH", f"{mechanism} {_b64(initial)}")  # type: ignore[attr-defined]
                self._auth_challenge_count = 1
            else:
                code, reply = self.docmd("AUTH", mechanism)  # type: ignore[attr-defined]
                self._auth_challenge_count = 0
            while code == 334:
                self._auth_challenge_count += 1
                code, reply = self.docmd(_b64(authobject(base64.decodebytes(reply))))  # type: ignore[attr-defined]
                if self._auth_challenge_count > _MAX_AUTH_CHALLENGES:
                    break
            if code in (235, 503):
                return code, reply
            raise smtplib.SMTPAuthenticationError(code, reply)
        finally:
            self._in_auth = False

    def auth_cram_md5(self, challenge: t.Any = None) -> t.Any:
        if challenge is None:
            return None
        user: str = self.user  # type: ignore[attr-defined]
        password: str = self.password  # type: ignore[attr-defined]
        digest = hmac.HMAC(password.encode("utf-8"), challenge, "md5").hexdigest()
        return f"{user} {digest}"


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
        _auth_xoauth2(smtp, account.login, token)
    except smtplib.SMTPAuthenticationError:
        if token.fresh:
            raise
        tokens.forget(account)
        if transcript is not None:
            transcript.event("the server refused the cached access token; fetching a new one")
        _auth_xoauth2(smtp, account.login, tokens.get(account, timeout=timeout, transcript=transcript))


def _auth_xoauth2(smtp: smtplib.SMTP, login: str, token: AccessToken) -> None:
    initial = xoauth2_response(login, token.value)

    def respond(challenge: bytes | None = None) -> str:
        # A 334 after the initial response carries the server's JSON error; the reply to it is empty.
        return initial if challenge is None else ""

    smtp.auth("XOAUTH2", respond, initial_response_ok=True)
