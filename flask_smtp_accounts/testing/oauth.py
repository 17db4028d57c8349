"""A local OAuth2 provider on 127.0.0.1: token and authorization endpoints that behave like Microsoft's and Google's.

It issues access tokens that expire (on its own clock, which a test can
move), rotates refresh tokens and voids the old ones, answers with the
providers' error codes, and checks PKCE (S256) on the code exchange. Its
:attr:`OAuthServer.xoauth2` plugs into :class:`~flask_smtp_accounts.testing.SMTPServer`
so that the SMTP server accepts only a currently valid token::

    with OAuthServer() as provider, SMTPServer(tls="starttls", cert=..., xoauth2=provider.xoauth2) as smtp:
        refresh_token = provider.issue_refresh_token("user@example.com")
        ...

The authorization endpoint shows a small sign-in page (login and an
"Accept" button) and redirects back with a code, like the providers do.

The module is longer than most (about 480 lines) because it is one
provider doing what the real ones do that the extension must handle:
both token flows, rotation, expiry, PKCE, and the providers' refusals.
"""

from __future__ import annotations

import base64
import hashlib
import html
import http.server
import json
import secrets
import threading
import time
import typing as t
import urllib.parse
from dataclasses import dataclass
from types import TracebackType

from .servers import HOST, LOGIN

__all__ = ["CLIENT_ID", "CLIENT_SECRET", "TENANT", "OAuthServer", "TokenRequest"]

CLIENT_ID = "test-client-id"
CLIENT_SECRET = "test-client-s3cret"
TENANT = "test-tenant"

#: Error answers as Microsoft words them (``error``, ``error_description``).
MICROSOFT_ERRORS: dict[str, tuple[str, str]] = {
    "expired": (
        "invalid_grant",
        "AADSTS700082: The refresh token has expired due to inactivity. The token was issued on"
        " 2024-01-01T00:00:00Z and was inactive for 90.00:00:00.",
    ),
    "revoked": ("invalid_grant", "AADSTS50173: The provided grant has expired due to it being revoked."),
    "consent": (
        "invalid_grant",
        "AADSTS65001: The user or administrator has not consented to use the application with ID"
        " 'test-client-id' named 'flask-smtp-accounts tests'. Send an interactive authorization request"
        " for this user and resource.",
    ),
    "bad_secret": (
        "invalid_client",
        "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the"
        " client secret value, not the client secret ID.",
    ),
    "expired_secret": (
        "invalid_client",
        "AADSTS7000222: The provided client secret keys for app 'test-client-id' are expired.",
    ),
    "unknown_tenant": ("invalid_request", "AADSTS90002: Tenant 'nope' not found."),
    "pkce": (
        "invalid_grant",
        "AADSTS501481: The Code_Verifier does not match the code_challenge supplied in the authorization request.",
    ),
    "bad_code": ("invalid_grant", "AADSTS70000: The provided value for the 'code' parameter is not valid."),
    "grant_not_allowed": (
        "unauthorized_client",
        "AADSTS70001: Application with identifier 'test-client-id' was not found in the directory.",
    ),
    "bad_scope": (
        "invalid_scope",
        "AADSTS70011: The provided value for the input parameter 'scope' is not valid.",
    ),
    "unavailable": (
        "temporarily_unavailable",
        "AADSTS90033: A transient error has occurred. Please try again.",
    ),
    "unknown_error": (
        "invalid_request",
        "AADSTS900144: The request body must contain the following parameter.",
    ),
}

#: Error answers as Google words them.
GOOGLE_ERRORS: dict[str, tuple[str, str]] = {
    "expired": ("invalid_grant", "Token has been expired or revoked."),
    "revoked": ("invalid_grant", "Token has been expired or revoked."),
    "consent": ("consent_required", "The user has not granted the app the requested scopes."),
    "bad_secret": ("invalid_client", "Unauthorized"),
    "expired_secret": ("invalid_client", "Unauthorized"),
    "unknown_tenant": ("invalid_request", "Invalid request."),
    "pkce": ("invalid_grant", "Invalid code verifier."),
    "bad_code": ("invalid_grant", "Bad Request"),
    "grant_not_allowed": ("unauthorized_client", "Unauthorized"),
    "bad_scope": ("invalid_scope", "Some requested scopes were invalid."),
    "unavailable": ("temporarily_unavailable", "Try again later."),
    "unknown_error": ("invalid_request", "Invalid request."),
}


@dataclass(frozen=True)
class TokenRequest:
    """One request to the token endpoint, as the provider saw it (secrets left out)."""

    grant_type: str
    client_id: str
    scope: str | None
    ok: bool
    error: str | None = None


@dataclass
class _Code:
    login: str
    client_id: str
    redirect_uri: str
    scope: str
    challenge: str


class OAuthServer:
    """An OAuth2 provider for tests, on a free port of 127.0.0.1, in a thread.

    ``style``: ``"microsoft"`` or ``"google"``, the wording of its errors.
    ``lifetime``: seconds an access token lives. ``rotate_refresh_tokens``:
    each refresh answers with a new refresh token and voids the old one
    (the strictest provider behaviour). ``mailboxes``: what app-only tokens
    may send as. ``auto_approve``: the authorization endpoint skips its
    page and signs in ``login_hint`` (or :data:`LOGIN`) at once.
    """

    def __init__(
        self,
        *,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
        tenant: str = TENANT,
        style: str = "microsoft",
        lifetime: float = 3600.0,
        rotate_refresh_tokens: bool = True,
        mailboxes: t.Iterable[str] = (LOGIN,),
        auto_approve: bool = False,
    ) -> None:
        if style not in ("microsoft", "google"):
            raise ValueError("style must be 'microsoft' or 'google'")
        self.client_id = client_id
        self.client_secret = client_secret
        self.tenant = tenant
        self.style = style
        self.lifetime = lifetime
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.mailboxes = {m.lower() for m in mailboxes}
        self.auto_approve = auto_approve
        self.host = HOST
        #: Seconds added to the real clock; see :meth:`advance`.
        self.offset = 0.0
        #: When set, every token request gets this error (a key of the error tables).
        self.failing: str | None = None
        self._lock = threading.Lock()
        self._access: dict[str, tuple[str | None, float]] = {}
        self._refresh: dict[str, str] = {}
        self._codes: dict[str, _Code] = {}
        self._requests: list[TokenRequest] = []
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------

    def start(self) -> OAuthServer:
        if self._server is not None:
            raise RuntimeError("OAuthServer already started")
        server = http.server.ThreadingHTTPServer((self.host, 0), _make_handler(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name="OAuthServer"
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> OAuthServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("OAuthServer was never started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/{self.tenant}/oauth2/v2.0/token"

    @property
    def authorize_url(self) -> str:
        return f"{self.base_url}/{self.tenant}/oauth2/v2.0/authorize"

    # --- the provider's state, for tests ------------------------------------------

    def now(self) -> float:
        """The provider's clock: real time plus :attr:`offset`."""
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        """Move the provider's clock forward (tokens expire without waiting)."""
        with self._lock:
            self.offset += seconds

    def issue_refresh_token(self, login: str = LOGIN) -> str:
        """A refresh token for ``login``, as if that person had signed in earlier."""
        token = "rt-" + secrets.token_urlsafe(24)
        with self._lock:
            self._refresh[token] = login
        return token

    def expire_refresh_token(self, token: str) -> None:
        """Void a refresh token (it expired, or the user revoked the app)."""
        with self._lock:
            self._refresh.pop(token, None)

    def revoke_access_tokens(self) -> None:
        """Void every access token issued so far (the SMTP server then refuses them)."""
        with self._lock:
            self._access.clear()

    @property
    def refresh_tokens(self) -> dict[str, str]:
        """Valid refresh tokens and their users."""
        with self._lock:
            return dict(self._refresh)

    @property
    def requests(self) -> list[TokenRequest]:
        """Token requests so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def valid_access_token(self, login: str, token: str) -> bool:
        """Whether ``token`` is unexpired and lets ``login`` send (delegated: its user; app-only: a mailbox)."""
        with self._lock:
            found = self._access.get(token)
        if found is None:
            return False
        user, expires_at = found
        if self.now() >= expires_at:
            return False
        if user is None:
            return login.lower() in self.mailboxes
        return login.lower() == user.lower()

    @property
    def xoauth2(self) -> t.Callable[[str, str], bool]:
        """The authenticator for ``SMTPServer(xoauth2=...)``."""
        return self.valid_access_token

    # --- endpoints -------------------------------------------------------------------

    def _error(self, key: str) -> tuple[int, dict[str, str]]:
        table = MICROSOFT_ERRORS if self.style == "microsoft" else GOOGLE_ERRORS
        error, description = table[key]
        status = 401 if error == "invalid_client" else 400
        return status, {"error": error, "error_description": description}

    def _issue(self, user: str | None, scope: str, *, refresh: bool) -> dict[str, t.Any]:
        access = "at-" + secrets.token_urlsafe(24)
        answer: dict[str, t.Any] = {
            "token_type": "Bearer",
            "access_token": access,
            "expires_in": int(self.lifetime),
            "scope": scope,
        }
        with self._lock:
            self._access[access] = (user, self.now() + self.lifetime)
        if refresh and user is not None:
            answer["refresh_token"] = self.issue_refresh_token(user)
        if user is not None and "openid" in scope.split():
            answer["id_token"] = _unsigned_jwt({"email": user, "aud": self.client_id})
        return answer

    def token(self, form: dict[str, str], basic: tuple[str, str] | None) -> tuple[int, dict[str, t.Any]]:
        """The token endpoint: client credentials, refresh token and authorization code grants."""
        grant_type = form.get("grant_type", "")
        client_id, client_secret = basic or (form.get("client_id", ""), form.get("client_secret", ""))
        scope = form.get("scope", "")
        status, answer = self._token(grant_type, client_id, client_secret, scope, form)
        with self._lock:
            self._requests.append(
                TokenRequest(grant_type, client_id, scope or None, status == 200, answer.get("error"))
            )
        return status, answer

    def _token(
        self, grant_type: str, client_id: str, client_secret: str, scope: str, form: dict[str, str]
    ) -> tuple[int, dict[str, t.Any]]:
        if self.failing is not None:
            return self._error(self.failing)
        if client_id != self.client_id or not secrets.compare_digest(
            client_secret.encode(), self.client_secret.encode()
        ):
            return self._error("bad_secret")
        if grant_type == "client_credentials":
            if not scope.endswith("/.default"):
                return 400, {
                    "error": "invalid_scope",
                    "error_description": "AADSTS1002012: The provided value for scope is not valid.",
                }
            return 200, self._issue(None, scope, refresh=False)
        if grant_type == "refresh_token":
            old = form.get("refresh_token", "")
            with self._lock:
                user = self._refresh.get(old)
                if user is not None and self.rotate_refresh_tokens:
                    del self._refresh[old]
            if user is None:
                return self._error("expired")
            answer = self._issue(user, scope, refresh=self.rotate_refresh_tokens)
            return 200, answer
        if grant_type == "authorization_code":
            with self._lock:
                code = self._codes.pop(form.get("code", ""), None)  # single use
            if code is None or code.client_id != client_id or code.redirect_uri != form.get("redirect_uri"):
                return self._error("bad_code")
            verifier = form.get("code_verifier", "")
            if not verifier or _s256(verifier) != code.challenge:
                return self._error("pkce")
            return 200, self._issue(code.login, code.scope, refresh=True)
        return 400, {
            "error": "unsupported_grant_type",
            "error_description": f"{grant_type!r} is not supported.",
        }

    def authorize(self, query: dict[str, str], approved_login: str | None) -> tuple[int, str, dict[str, str]]:
        """The authorization endpoint: ``(status, body, headers)``; a redirect once someone accepted."""
        redirect_uri = query.get("redirect_uri", "")
        if query.get("client_id") != self.client_id or not redirect_uri:
            return 400, _page("Sign-in error", "<p>Unknown client or missing redirect_uri.</p>"), {}
        if query.get("response_type") != "code":
            return self._back(
                redirect_uri, {"error": "unsupported_response_type", "state": query.get("state", "")}
            )
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return self._back(
                redirect_uri,
                {
                    "error": "invalid_request",
                    "error_description": "PKCE with S256 is required.",
                    "state": query.get("state", ""),
                },
            )
        login = approved_login
        if login is None and self.auto_approve:
            login = query.get("login_hint") or LOGIN
        if login is None:
            fields = "".join(
                f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                for k, v in query.items()
            )
            body = (
                f"<h1>Sign in to the test provider</h1><form method='post'>{fields}"
                f"<label>Email <input name='login' value='{html.escape(query.get('login_hint', LOGIN))}'></label>"
                f"<p>flask-smtp-accounts tests wants to send mail as you ({html.escape(query.get('scope', ''))}).</p>"
                "<button name='decision' value='accept'>Accept</button>"
                "<button name='decision' value='cancel'>Cancel</button></form>"
            )
            return 200, _page("Sign in", body), {}
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = _Code(
                login, self.client_id, redirect_uri, query.get("scope", ""), query["code_challenge"]
            )
        return self._back(redirect_uri, {"code": code, "state": query.get("state", "")})

    @staticmethod
    def _back(redirect_uri: str, params: dict[str, str]) -> tuple[int, str, dict[str, str]]:
        separator = "&" if urllib.parse.urlsplit(redirect_uri).query else "?"
        return 302, "", {"Location": redirect_uri + separator + urllib.parse.urlencode(params)}


def _s256(verifier: str) -> str:
    return (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest())
        .rstrip(b"=")
        .decode("ascii")
    )


def _unsigned_jwt(claims: dict[str, t.Any]) -> str:
    def part(data: dict[str, t.Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode("ascii")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def _page(title: str, body: str) -> str:
    return f"<!doctype html><html><head><title>{html.escape(title)}</title></head><body>{body}</body></html>"


def _make_handler(provider: OAuthServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "OAuthServer"

        def log_message(self, format: str, *args: t.Any) -> None:  # noqa: A002 - the base class's name
            pass

        def _send(self, status: int, body: str, headers: dict[str, str], content_type: str) -> None:
            data = body.encode("utf-8")
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if data:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def _form(self) -> dict[str, str]:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode("utf-8")
            return dict(urllib.parse.parse_qsl(raw, keep_blank_values=True))

        def _basic(self) -> tuple[str, str] | None:
            header = self.headers.get("Authorization", "")
            if not header.startswith("Basic "):
                return None
            user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
            return urllib.parse.unquote_plus(user), urllib.parse.unquote_plus(password)

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            url = urllib.parse.urlsplit(self.path)
            if url.path.endswith("/authorize"):
                query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
                status, body, headers = provider.authorize(query, None)
                self._send(status, body, headers, "text/html; charset=utf-8")
            else:
                self._send(404, _page("Not found", "<p>Not found</p>"), {}, "text/html; charset=utf-8")

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            url = urllib.parse.urlsplit(self.path)
            form = self._form()
            if url.path.endswith("/token"):
                status, answer = provider.token(form, self._basic())
                self._send(status, json.dumps(answer), {}, "application/json")
            elif url.path.endswith("/authorize"):
                decision = form.pop("decision", "")
                login = form.pop("login", "") or LOGIN
                if decision != "accept":
                    status, body, headers = provider._back(
                        form.get("redirect_uri", ""),
                        {"error": "access_denied", "state": form.get("state", "")},
                    )
                else:
                    status, body, headers = provider.authorize(form, login)
                self._send(status, body, headers, "text/html; charset=utf-8")
            else:
                self._send(404, "{}", {}, "application/json")

    return Handler
