"""Reading from a server by a deadline and under a size cap.

A socket timeout bounds one read, not an answer: a server that sends one
byte a second never trips it, and one that never ends its reply fills
memory. Every read here is given what is left of one deadline for the whole
answer, and stops at a cap on its size, so that a hostile or broken server
(or anyone on the path before TLS) can hold a send for ``timeout_s`` at
most and make it hold a few kilobytes.

- :class:`ReplyReader` reads SMTP replies; the SMTP client classes here
  (and those of ``connection.py``, built on :class:`BoundedReplies`) read
  every reply through it;
- :func:`post` makes an HTTP request (to the OAuth2 token endpoint) whose
  whole exchange ends by one deadline (:class:`DeadlineSocket`) and whose
  answer stays under a cap.
"""

from __future__ import annotations

import functools
import http.client
import io
import math
import numbers
import smtplib
import socket
import ssl
import time
import typing as t
import urllib.error
import urllib.request

#: Lines of one SMTP reply at most (a long EHLO reply has about 20).
REPLY_MAX_LINES = 512
#: Bytes of one SMTP reply at most: RFC 5321 allows 512 octets a line (4.5.3.1.5).
REPLY_MAX_BYTES = 64 * 1024
#: Bytes of one reply line at most: smtplib's limit, which some servers' long lines need.
LINE_MAX_BYTES = 8192
#: Bytes of a token endpoint's answer at most (a token answer with an id_token is a few kilobytes).
TOKEN_ANSWER_MAX_BYTES = 256 * 1024

_CHUNK = 4096


class ReplyTimeout(smtplib.SMTPServerDisconnected):
    """The server's reply did not end within the timeout; the connection is closed."""

    def __init__(self, timeout: float) -> None:
        super().__init__(f"the reply did not end within {timeout:g} s")
        self.timeout = timeout


class ReplyTooLarge(smtplib.SMTPServerDisconnected):
    """The server's reply went past the cap on lines or bytes; the connection is closed."""

    def __init__(self) -> None:
        super().__init__(f"the reply went past {REPLY_MAX_LINES} lines or {REPLY_MAX_BYTES // 1024} KiB")


class AnswerTooLarge(Exception):
    """An HTTP answer went past its cap (see :data:`TOKEN_ANSWER_MAX_BYTES`)."""


class DeadlinePassed(TimeoutError):
    """A read of a :class:`DeadlineSocket` came after its deadline."""


def seconds(timeout: t.Any) -> float | None:
    """``timeout`` as a number of seconds, or ``None`` when it sets no limit."""
    if isinstance(timeout, numbers.Real) and not isinstance(timeout, bool):
        value = float(timeout)
        if math.isfinite(value) and value > 0:
            return value
    return None


class ReplyReader:
    """Reads the SMTP replies of one socket, each whole reply within ``timeout`` and under the caps.

    It keeps what the server sent past the end of a reply for the next
    one. A new socket (after STARTTLS) needs a new reader, so that nothing
    received before TLS is read after it.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = bytearray()

    def read(self, timeout: float | None) -> tuple[int, bytes]:
        """One reply: its code (-1 when unreadable, as smtplib) and its lines joined by ``\\n``.

        Raises :class:`ReplyTimeout`, :class:`ReplyTooLarge`,
        ``SMTPServerDisconnected`` (the server hung up or the socket
        failed) or ``SMTPResponseException`` (a line over
        :data:`LINE_MAX_BYTES`, as smtplib). The caller closes the connection.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        previous = self.sock.gettimeout()
        lines: list[bytes] = []
        size = 0
        code = -1
        try:
            while True:
                line = self._line(deadline, timeout)
                if not line:
                    raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
                if len(line) > LINE_MAX_BYTES:
                    raise smtplib.SMTPResponseException(500, "Line too long.")
                size += len(line)
                if size > REPLY_MAX_BYTES or len(lines) >= REPLY_MAX_LINES:
                    raise ReplyTooLarge()
                lines.append(line[4:].strip(b" \t\r\n"))
                try:
                    code = int(line[:3])
                except ValueError:
                    code = -1
                    break
                if line[3:4] != b"-":
                    break
        finally:
            try:
                self.sock.settimeout(previous)
            except OSError:
                pass
        return code, b"\n".join(lines)

    def _line(self, deadline: float | None, timeout: float | None) -> bytes:
        """The next line, with its line break; shorter at the end of the stream or past the line limit."""
        buffer = self._buffer
        while True:
            end = buffer.find(b"\n")
            if end >= 0:
                line = bytes(buffer[: end + 1])
                del buffer[: end + 1]
                return line
            if len(buffer) > LINE_MAX_BYTES:
                line = bytes(buffer)
                buffer.clear()
                return line
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ReplyTimeout(t.cast(float, timeout))
                self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(_CHUNK)
            except TimeoutError as err:
                raise ReplyTimeout(t.cast(float, timeout)) from err
            except OSError as err:
                raise smtplib.SMTPServerDisconnected(f"Connection unexpectedly closed: {err}") from err
            if not chunk:
                line = bytes(buffer)
                buffer.clear()
                return line
            buffer += chunk


class BoundedReplies:
    """Mixin for smtplib's clients: every reply read by a :class:`ReplyReader`.

    On any failure to read a reply the connection is closed, as smtplib does.
    """

    _reader: ReplyReader | None = None
    sock: t.Any
    timeout: t.Any

    def getreply(self) -> tuple[int, bytes]:
        if self.sock is None:
            raise smtplib.SMTPServerDisconnected("please run connect() first")
        reader = self._reader
        if reader is None or reader.sock is not self.sock:
            reader = self._reader = ReplyReader(self.sock)
        try:
            return reader.read(seconds(self.timeout))
        except smtplib.SMTPException:
            self.close()  # type: ignore[attr-defined]
            raise


class SMTP(BoundedReplies, smtplib.SMTP):
    """smtplib.SMTP whose replies end by the timeout and stay under the caps."""


class SMTP_SSL(BoundedReplies, smtplib.SMTP_SSL):  # noqa: N801 - named after smtplib's
    """smtplib.SMTP_SSL whose replies end by the timeout and stay under the caps."""


class DeadlineSocket:
    """A connected socket whose every read gets what is left until ``deadline`` (``time.monotonic``).

    ``http.client`` reads a response through ``sock.makefile("rb")``; the
    file made here reads through this wrapper, so that a dripped status
    line, header or body ends with :class:`DeadlinePassed`.
    """

    def __init__(self, sock: t.Any, deadline: float, timeout: float) -> None:
        self._sock = sock
        self._deadline = deadline
        self._timeout = timeout

    def __getattr__(self, name: str) -> t.Any:
        return getattr(self._sock, name)

    def _read(self, read: t.Callable[..., t.Any], *args: t.Any) -> t.Any:
        left = self._deadline - time.monotonic()
        if left > 0:
            self._sock.settimeout(left)
            try:
                return read(*args)
            except TimeoutError:
                pass
        raise DeadlinePassed(f"no complete answer within {self._timeout:g} s")

    def recv(self, size: int, flags: int = 0) -> bytes:
        return t.cast(bytes, self._read(self._sock.recv, size, flags))

    def recv_into(self, buffer: t.Any, size: int = 0, flags: int = 0) -> int:
        return t.cast(int, self._read(self._sock.recv_into, buffer, size, flags))

    def makefile(self, mode: str = "rb", buffering: int | None = None, **kwargs: t.Any) -> t.Any:
        if mode != "rb":
            return self._sock.makefile(mode, buffering, **kwargs)
        self._sock._io_refs += 1  # closed with the file, as socket.makefile counts it
        return io.BufferedReader(socket.SocketIO(self, "rb"))  # type: ignore[arg-type]


class _DeadlineHTTPConnection(http.client.HTTPConnection):
    """Connects within what is left until ``deadline``, then reads through a :class:`DeadlineSocket`.

    ``whole_timeout`` is the whole exchange's, for the message when the deadline passes.
    """

    def __init__(self, host: str, *, deadline: float, whole_timeout: float, **kwargs: t.Any) -> None:
        super().__init__(host, **kwargs)
        self.deadline = deadline
        self.whole_timeout = whole_timeout

    def connect(self) -> None:
        self.timeout = max(self.deadline - time.monotonic(), 0.001)
        super().connect()
        self.sock = DeadlineSocket(self.sock, self.deadline, self.whole_timeout)


class _DeadlineHTTPSConnection(_DeadlineHTTPConnection, http.client.HTTPSConnection):
    """HTTPS: the TLS handshake is made on the plain socket, then reads go through the wrapper."""


class _DeadlineHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline: float, timeout: float) -> None:
        super().__init__()
        self._connection = functools.partial(
            _DeadlineHTTPConnection, deadline=deadline, whole_timeout=timeout
        )

    def http_open(self, req: urllib.request.Request) -> t.Any:
        return self.do_open(self._connection, req)


class _DeadlineHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline: float, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(context=context)
        self._tls = context
        self._connection = functools.partial(
            _DeadlineHTTPSConnection, deadline=deadline, whole_timeout=timeout
        )

    def https_open(self, req: urllib.request.Request) -> t.Any:
        return self.do_open(self._connection, req, context=self._tls)


def post(
    request: urllib.request.Request, *, timeout: float, context: ssl.SSLContext, direct: bool, limit: int
) -> tuple[int, bytes]:
    """POST ``request``: ``(status, body)`` of the answer, an error status included.

    The whole exchange (connecting, TLS, the status line, the headers and
    the body) ends within ``timeout`` (:class:`DeadlinePassed`, a
    ``TimeoutError``) and the body stays under ``limit`` bytes
    (:class:`AnswerTooLarge`); otherwise raises what ``urllib`` raises.
    ``direct``: ignore the proxy settings of the environment.
    """
    deadline = time.monotonic() + timeout
    handlers: list[urllib.request.BaseHandler] = [
        _DeadlineHTTPHandler(deadline, timeout),
        _DeadlineHTTPSHandler(deadline, timeout, context),
    ]
    if direct:
        handlers.append(urllib.request.ProxyHandler({}))
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, read_capped(response, limit)
    except urllib.error.HTTPError as err:
        with err:
            return err.code, read_capped(err, limit)


def read_capped(response: t.Any, limit: int) -> bytes:
    """The whole body of an HTTP response, or :class:`AnswerTooLarge` past ``limit`` bytes."""
    parts: list[bytes] = []
    size = 0
    while True:
        chunk = response.read(min(_CHUNK * 4, limit + 1 - size))
        if not chunk:
            return b"".join(parts)
        size += len(chunk)
        if size > limit:
            raise AnswerTooLarge(f"the answer went past {limit // 1024} KiB")
        parts.append(chunk)
