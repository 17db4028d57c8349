"""Real SMTP servers on 127.0.0.1 for the test suite: the aiosmtpd-based :class:`SMTPServer`.

The module is longer than most (about 470 lines) because it is one
server with every option a test needs of a provider: STARTTLS or implicit
TLS, AUTH LOGIN and PLAIN, XOAUTH2 against the test OAuth2 provider,
refusals by command, PIPELINING, and the record of what it received. The
sockets that misbehave below SMTP are in ``sockets.py``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import email
import email.message
import email.policy
import errno
import hmac
import json
import socket
import ssl
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

__all__ = [
    "LOGIN",
    "PASSWORD",
    "AuthAttempt",
    "Received",
    "SMTPServer",
]

LOGIN = "user@example.com"
PASSWORD = "s3cret-Pässword"

HOST = "127.0.0.1"
AUTH_REQUIRED = "530 5.7.0 Authentication required"
TLS_MODES = ("none", "starttls", "ssl")


@dataclass(frozen=True)
class Received:
    """One message accepted by an :class:`SMTPServer`, as seen on the wire."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    peer: tuple[Any, ...]
    login: str | None
    tls: bool

    @property
    def message(self) -> email.message.EmailMessage:
        """The parsed message (``email.policy.default``) with CRLFs as ``\\n``; ``data`` stays raw."""
        return email.message_from_bytes(self.data.replace(b"\r\n", b"\n"), policy=email.policy.default)

    @property
    def message_id(self) -> str | None:
        """The ``Message-ID`` header, if any."""
        value = self.message["Message-ID"]
        return None if value is None else str(value)


class AuthAttempt(NamedTuple):
    """One AUTH exchange; the password is never kept."""

    mechanism: str
    login: str
    success: bool


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class _Handler:
    """aiosmtpd handler recording messages for an :class:`SMTPServer`.

    No attribute of this class may start with ``auth_``: aiosmtpd would take it for an AUTH mechanism.
    """

    def __init__(self, owner: SMTPServer, hooks: Any) -> None:
        self._owner = owner
        self._hooks = hooks

    async def _hook(self, name: str, *args: Any) -> str | None:
        hook = getattr(self._hooks, name, None)
        if hook is None:
            return None
        reply: str | None = await hook(*args)
        return reply

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if self._owner.pipelining:
            # aiosmtpd reads a command at a time, so it takes pipelined commands as they come; it just never says so.
            responses = [*responses[:-1], "250-PIPELINING", responses[-1]]
        if not self._owner.requires_auth:
            return [line for line in responses if not line[4:].upper().startswith("AUTH")]
        return responses

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        if self._owner.requires_auth and not session.authenticated:
            return AUTH_REQUIRED
        status = await self._hook("handle_MAIL", server, session, envelope, address, mail_options)
        if status is not None:
            return status
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        status = await self._hook("handle_RCPT", server, session, envelope, address, rcpt_options)
        if status is not None:
            return status
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        status = await self._hook("handle_DATA", server, session, envelope)
        if status is not None:
            return status
        transport = server.transport
        encrypted = session.ssl is not None or (
            transport is not None and transport.get_extra_info("ssl_object") is not None
        )
        content = envelope.original_content
        assert isinstance(content, bytes)
        self._owner._record(
            Received(
                mail_from=envelope.mail_from or "",
                rcpt_tos=list(envelope.rcpt_tos),
                data=content,
                peer=tuple(session.peer or ()),
                login=session.auth_data if session.authenticated else None,
                tls=encrypted,
            )
        )
        return "250 Message accepted for delivery"


class _XOAuth2Handler(_Handler):
    """A handler that also offers AUTH XOAUTH2, answering like Gmail."""

    #: Gmail's answer to a refused token, before its 535.
    ERROR = {"status": "401", "schemes": "bearer", "scope": "https://mail.google.com/"}

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:  # noqa: N802 - aiosmtpd's name
        if len(args) == 1:
            blob = await server.challenge_auth("", encode_to_b64=False)
            if not isinstance(blob, bytes):
                return AuthResult(success=False, handled=True)
        else:
            try:
                blob = base64.b64decode(args[1], validate=True)
            except (binascii.Error, ValueError):
                await server.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        fields = dict(
            part.split("=", 1) for part in blob.decode("utf-8", "replace").split("\x01") if "=" in part
        )
        login, bearer = fields.get("user", ""), fields.get("auth", "")
        token = bearer[7:] if bearer.startswith("Bearer ") else ""
        if token and self._owner._check_xoauth2(login, token):
            return AuthResult(success=True, auth_data=login)
        if not token:
            self._owner._check_xoauth2(login, "")
        answer = await server.challenge_auth(json.dumps(self.ERROR).encode())
        if not isinstance(answer, bytes):
            return AuthResult(success=False, handled=True)
        refusal = self._owner.auth_reply or "535 5.7.8 Username and Password not accepted."
        return AuthResult(success=False, handled=False, message=refusal)


class _CountedSMTP(SMTP):
    """aiosmtpd's SMTP protocol, telling its :class:`SMTPServer` when a client connects and leaves."""

    def __init__(self, owner: SMTPServer, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._owner = owner
        self._counted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._counted:  # STARTTLS makes a connection anew on the same socket: one session still
            self._counted = True
            self._owner._session_opened()
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        try:
            super().connection_lost(error)
        finally:
            if self._counted:
                self._counted = False
                self._owner._session_closed()


class _Controller(Controller):
    """Controller that remembers every SMTP connection so :meth:`SMTPServer.stop` can close them."""

    def __init__(self, handler: _Handler, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.connections: weakref.WeakSet[SMTP] = weakref.WeakSet()

    def factory(self) -> SMTP:
        smtp = _CountedSMTP(self.handler._owner, self.handler, **self.SMTP_kwargs)
        self.connections.add(smtp)
        return smtp

    async def close_connections(self, timeout: float = 2.0) -> None:
        for smtp in list(self.connections):
            transport = smtp.transport
            if isinstance(transport, asyncio.Transport):
                transport.abort()
            elif transport is not None:
                transport.close()
        deadline = time.monotonic() + timeout
        while any(smtp.transport is not None for smtp in self.connections):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0)


class SMTPServer:
    """aiosmtpd server on 127.0.0.1 recording what it receives.

    ``tls``: ``"none"``, ``"starttls"`` or ``"ssl"`` (implicit TLS); ``cert`` is ``(certfile, keyfile)``.
    ``auth``: ``(login, password)``; when given, AUTH PLAIN/LOGIN with exactly these (UTF-8) credentials
    is required before MAIL; with ``tls="starttls"`` AUTH is only offered after STARTTLS.
    ``handler_hooks``: object whose async ``handle_MAIL``/``handle_RCPT``/``handle_DATA`` (aiosmtpd
    signatures) run first; returning a status string replaces the default behaviour (the hook then owns
    the envelope, and DATA is not recorded), returning None falls through.
    ``xoauth2``: ``callable(login, access_token) -> bool``; when given, AUTH XOAUTH2 is offered (and AUTH
    required) and a token is accepted when it returns true, e.g. ``OAuthServer.xoauth2``. A refused
    token gets Gmail's answer: ``334`` with a base64 JSON error, then ``535`` after the client's empty line.
    ``auth_reply``: the final reply to refused credentials or tokens (default ``535 5.7.8 ...``), to play
    a provider, e.g. ``"535 5.7.139 Authentication unsuccessful, ..."``.
    ``pipelining``: offer PIPELINING (RFC 2920) in the EHLO reply, as Postfix, Exim and the big providers do.
    """

    def __init__(
        self,
        *,
        tls: str = "none",
        cert: tuple[Path, Path] | None = None,
        auth: tuple[str, str] | None = None,
        require_starttls: bool | None = None,
        handler_hooks: Any = None,
        xoauth2: Callable[[str, str], bool] | None = None,
        auth_reply: str | None = None,
        pipelining: bool = False,
    ) -> None:
        if tls not in TLS_MODES:
            raise ValueError(f"tls must be one of {TLS_MODES}, not {tls!r}")
        if tls != "none" and cert is None:
            raise ValueError(f"tls={tls!r} needs cert=(certfile, keyfile)")
        if require_starttls and tls != "starttls":
            raise ValueError("require_starttls needs tls='starttls'")
        self.tls = tls
        self.cert = cert
        self.require_starttls = (tls == "starttls") if require_starttls is None else require_starttls
        self.credentials: tuple[bytes, bytes] | None = (
            None if auth is None else (auth[0].encode("utf-8"), auth[1].encode("utf-8"))
        )
        self.handler_hooks = handler_hooks
        self.xoauth2 = xoauth2
        self.auth_reply = auth_reply
        self.pipelining = pipelining
        self.host = HOST
        self._port: int | None = None
        self._controller: _Controller | None = None
        self._lock = threading.Condition()
        self._received: list[Received] = []
        self._auth_attempts: list[AuthAttempt] = []
        self._sessions_open = 0
        self._most_sessions = 0

    def __repr__(self) -> str:
        auth = "auth" if self.credentials else "no-auth"
        return f"<SMTPServer {self.tls} {auth} {self.host}:{self._port}>"

    @property
    def port(self) -> int:
        """Listening port; set by :meth:`start`."""
        if self._port is None:
            raise RuntimeError(f"{self!r} was never started")
        return self._port

    def _server_context(self) -> ssl.SSLContext:
        assert self.cert is not None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certfile=str(self.cert[0]), keyfile=str(self.cert[1]))
        return context

    def _controller_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "hostname": self.host,
            "server_hostname": "localhost",
            "authenticator": self._authenticate,
            # Enforced by _Handler.handle_MAIL instead: aiosmtpd's auth_required=True combined with
            # auth_require_tls=False warns from SMTP.__init__, i.e. in the server thread, per connection.
            "auth_required": False,
            "auth_require_tls": self.tls == "starttls",
        }
        if self.tls == "ssl":
            kwargs["ssl_context"] = self._server_context()
        elif self.tls == "starttls":
            kwargs["tls_context"] = self._server_context()
            kwargs["require_starttls"] = self.require_starttls
        return kwargs

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", errors="replace")
        success = False
        if self.credentials is not None:
            login_ok = hmac.compare_digest(auth_data.login, self.credentials[0])
            password_ok = hmac.compare_digest(auth_data.password, self.credentials[1])
            success = login_ok and password_ok
        with self._lock:
            self._auth_attempts.append(AuthAttempt(mechanism, login, success))
        if success:
            return AuthResult(success=True, auth_data=login)
        return AuthResult(success=False, handled=False, message=self.auth_reply)

    @property
    def requires_auth(self) -> bool:
        """Whether AUTH is offered and required before MAIL."""
        return self.credentials is not None or self.xoauth2 is not None

    def _check_xoauth2(self, login: str, token: str) -> bool:
        assert self.xoauth2 is not None
        success = bool(self.xoauth2(login, token))
        with self._lock:
            self._auth_attempts.append(AuthAttempt("XOAUTH2", login, success))
        return success

    def _session_opened(self) -> None:
        with self._lock:
            self._sessions_open += 1
            self._most_sessions = max(self._most_sessions, self._sessions_open)
            self._lock.notify_all()

    def _session_closed(self) -> None:
        with self._lock:
            self._sessions_open -= 1
            self._lock.notify_all()

    @property
    def sessions_open(self) -> int:
        """Client connections open now."""
        with self._lock:
            return self._sessions_open

    @property
    def most_sessions_at_once(self) -> int:
        """The most client connections that were ever open at the same time."""
        with self._lock:
            return self._most_sessions

    def _record(self, received: Received) -> None:
        with self._lock:
            self._received.append(received)
            self._lock.notify_all()

    def start(self) -> SMTPServer:
        """Listen on a free port of 127.0.0.1 and wait until the server answers."""
        if self._controller is not None:
            raise RuntimeError(f"{self!r} already started")
        kwargs = self._controller_kwargs()
        for attempt in range(3):
            port = free_port()
            handler = (_XOAuth2Handler if self.xoauth2 is not None else _Handler)(self, self.handler_hooks)
            controller = _Controller(handler, port=port, **kwargs)
            try:
                controller.start()
            except OSError as error:
                self._dispose(controller)
                if error.errno != errno.EADDRINUSE or attempt == 2:
                    raise
            except BaseException:
                self._dispose(controller)
                raise
            else:
                self._controller, self._port = controller, port
                return self
        raise AssertionError("unreachable")

    @staticmethod
    def _dispose(controller: _Controller) -> None:
        controller.stop(no_assert=True)
        if not controller.loop.is_closed():
            controller.loop.close()

    def stop(self) -> None:
        """Close open client connections, stop the server thread and close its event loop."""
        controller, self._controller = self._controller, None
        if controller is None:
            return
        try:
            if controller.loop.is_running():
                asyncio.run_coroutine_threadsafe(controller.close_connections(), controller.loop).result(5)
        finally:
            self._dispose(controller)

    def __enter__(self) -> SMTPServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def received(self) -> list[Received]:
        """Snapshot of the messages received so far, in arrival order."""
        with self._lock:
            return list(self._received)

    @property
    def auth_attempts(self) -> list[AuthAttempt]:
        """Snapshot of the AUTH attempts so far: ``(mechanism, login, success)``."""
        with self._lock:
            return list(self._auth_attempts)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        """Block until at least ``count`` messages arrived; AssertionError on timeout."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._received) >= count, timeout):
                raise AssertionError(
                    f"{self!r}: expected {count} message(s) within {timeout}s, "
                    f"got {len(self._received)}: "
                    f"{[(r.mail_from, r.rcpt_tos) for r in self._received]}"
                )
            return list(self._received)

    def clear(self) -> None:
        """Forget received messages and AUTH attempts."""
        with self._lock:
            self._received.clear()
            self._auth_attempts.clear()
