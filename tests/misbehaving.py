"""Servers on 127.0.0.1 that misbehave on purpose, for the fault tests.

* :class:`Refuse`: hooks for ``SMTPServer(handler_hooks=...)`` that answer
  MAIL, RCPT or DATA with a chosen reply, for some addresses or for the
  first few letters only.
* :class:`ScriptedServer`: a small SMTP server of its own (no TLS, no AUTH)
  for what aiosmtpd will not do on request: a 421 greeting, dropping the
  connection in the middle of DATA or after it, closing an idle
  connection between letters.
* :class:`PacketServer`: an SMTP server (offering PIPELINING) that keeps
  every chunk each ``recv()`` returned, to show which commands came in
  one write.
* :class:`HostileServer` and :class:`HostileTokenEndpoint`: an SMTP server
  whose reply at one stage, and an OAuth2 token endpoint whose answer,
  never ends: dripped a byte at a time, or endless.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import socket
import socketserver
import threading
import typing as t
from dataclasses import dataclass, field
from types import TracebackType

HOST = "127.0.0.1"


@dataclass
class Refuse:
    """aiosmtpd handler hooks: answer ``command`` with ``reply``.

    ``addresses``: only for these RCPT addresses (``None``: every one);
    ``times``: only the first ``times`` matching commands (``None``: always).
    """

    command: str
    reply: str
    addresses: t.Collection[str] | None = None
    times: int | None = None
    seen: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _hit(self, command: str, address: str | None = None) -> bool:
        if command != self.command:
            return False
        if self.addresses is not None and address not in self.addresses:
            return False
        with self.lock:
            self.seen += 1
            return self.times is None or self.seen <= self.times

    async def handle_MAIL(
        self, server: t.Any, session: t.Any, envelope: t.Any, address: str, options: list[str]
    ) -> str | None:
        return self.reply if self._hit("MAIL") else None

    async def handle_RCPT(
        self, server: t.Any, session: t.Any, envelope: t.Any, address: str, options: list[str]
    ) -> str | None:
        return self.reply if self._hit("RCPT", address) else None

    async def handle_DATA(self, server: t.Any, session: t.Any, envelope: t.Any) -> str | None:
        return self.reply if self._hit("DATA") else None


@dataclass(frozen=True)
class Got:
    """A letter the scripted server took in (whether or not it answered 250)."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message_id(self) -> str | None:
        parsed = email.message_from_bytes(self.data.replace(b"\r\n", b"\n"), policy=email.policy.default)
        return parsed["Message-ID"]


class _ThreadedServer:
    """A TCP server on 127.0.0.1 with a thread per connection; :meth:`_converse` speaks on each."""

    def __init__(self) -> None:
        self.host = HOST
        self.port = 0
        self.connections = 0
        self._lock = threading.Condition()
        self._server: socketserver.ThreadingTCPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> t.Self:
        owner = self

        class Handler(socketserver.StreamRequestHandler):
            timeout = 10

            def handle(self) -> None:
                with owner._lock:
                    owner.connections += 1
                owner._converse(self)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server((HOST, 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> t.Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _converse(self, handler: socketserver.StreamRequestHandler) -> None:
        raise NotImplementedError


class ScriptedServer(_ThreadedServer):
    """A minimal SMTP server that misbehaves as told.

    ``greeting``: the first line (``"421 ..."`` greets with a refusal and hangs up).
    ``data``: ``"accept"``; ``"drop-in-data"`` hangs up after the first line
    of the letter's data; ``"drop-after-data"`` reads the whole letter,
    keeps it and hangs up without answering.
    ``close_after_letter``: after answering 250 to a letter, close the
    connection (a server dropping idle connections between letters).
    ``drop_after_letter``: the n-th letter (from 1, over all connections) is
    kept and the connection dropped without an answer, as ``drop-after-data``.
    ``auth_challenge``: offer AUTH PLAIN and LOGIN, and answer every AUTH
    command with this line (``"334 abc"``: a challenge that is not base64).
    ``pipelining``: offer PIPELINING; commands are read a line at a time,
    however they arrive. ``rcpt_reply``: answer every RCPT with this line
    (DATA is still answered 354, as RFC 2920 warns a server may; the end of
    data then gets 554). ``hang_up_at``: on this command (``MAIL``,
    ``RCPT``, ``DATA``) hang up without answering; ``silent_at``: on it,
    answer nothing more and wait for the client to hang up.
    """

    def __init__(
        self,
        *,
        greeting: str = "220 scripted ESMTP",
        data: str = "accept",
        close_after_letter: bool = False,
        drop_after_letter: int | None = None,
        auth_challenge: str | None = None,
        pipelining: bool = False,
        rcpt_reply: str | None = None,
        hang_up_at: str | None = None,
        silent_at: str | None = None,
    ) -> None:
        self.auth_challenge = auth_challenge
        self.pipelining = pipelining
        self.rcpt_reply = rcpt_reply
        self.hang_up_at = hang_up_at
        self.silent_at = silent_at
        self.greeting = greeting
        self.data_mode = data
        self.close_after_letter = close_after_letter
        self.drop_after_letter = drop_after_letter
        self._received: list[Got] = []
        super().__init__()

    @property
    def received(self) -> list[Got]:
        with self._lock:
            return list(self._received)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Got]:
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._received) >= count, timeout):
                raise AssertionError(f"expected {count} letter(s), got {len(self._received)}")
            return list(self._received)

    def _keep(self, got: Got) -> None:
        with self._lock:
            self._received.append(got)
            self._lock.notify_all()

    def _converse(self, handler: socketserver.StreamRequestHandler) -> None:
        rfile, sock = handler.rfile, handler.connection

        def reply(line: str) -> None:
            sock.sendall(line.encode() + b"\r\n")

        reply(self.greeting)
        if not self.greeting.startswith("220"):
            return
        mail_from = ""
        rcpt_tos: list[str] = []
        while True:
            line = rfile.readline()
            if not line:
                return
            command = line.decode("utf-8", "replace").strip()
            verb = command[:4].upper()
            if verb == self.hang_up_at:
                sock.shutdown(socket.SHUT_RDWR)
                return
            if verb == self.silent_at:
                while rfile.readline():
                    pass
                return
            if verb == "EHLO":
                reply("250-scripted")
                if self.auth_challenge:
                    reply("250-AUTH PLAIN LOGIN")
                if self.pipelining:
                    reply("250-PIPELINING")
                reply("250 8BITMIME")
            elif verb == "AUTH" and self.auth_challenge:
                reply(self.auth_challenge)
            elif verb in ("HELO", "NOOP", "RSET"):
                mail_from, rcpt_tos = ("", []) if verb == "RSET" else (mail_from, rcpt_tos)
                reply("250 OK")
            elif verb == "MAIL":
                mail_from = command.split(":", 1)[1].split()[0].strip("<>")
                reply("250 OK")
            elif verb == "RCPT" and self.rcpt_reply:
                reply(self.rcpt_reply)
            elif verb == "RCPT":
                rcpt_tos.append(command.split(":", 1)[1].split()[0].strip("<>"))
                reply("250 OK")
            elif verb == "DATA":
                reply("354 End data with <CR><LF>.<CR><LF>")
                if self.data_mode == "drop-in-data":
                    rfile.readline()
                    sock.shutdown(socket.SHUT_RDWR)
                    return
                lines = []
                while True:
                    chunk = rfile.readline()
                    if not chunk or chunk == b".\r\n":
                        break
                    lines.append(chunk[1:] if chunk.startswith(b"..") else chunk)
                self._keep(Got(mail_from, rcpt_tos, b"".join(lines)))
                if not rcpt_tos:
                    reply("554 5.5.1 Error: no valid recipients")
                    mail_from = ""
                    continue
                mail_from, rcpt_tos = "", []
                if self.data_mode == "drop-after-data" or len(self.received) == self.drop_after_letter:
                    sock.shutdown(socket.SHUT_RDWR)
                    return
                reply("250 Accepted")
                if self.close_after_letter:
                    sock.shutdown(socket.SHUT_RDWR)
                    return
            elif verb == "QUIT":
                reply("221 Bye")
                return
            else:
                reply("502 Command not implemented")


class PacketServer(_ThreadedServer):
    """An SMTP server on 127.0.0.1 that offers PIPELINING and keeps each chunk ``recv()`` returned.

    It reads with plain ``recv()``, no buffered file, so that
    :attr:`chunks` shows how the client's writes arrived: commands written
    at once come in one chunk (on loopback a write of a few hundred bytes
    is one segment), commands each written after a reply come one a chunk.
    Every command is answered 250 (DATA 354, then 250 after the letter).
    """

    def __init__(self) -> None:
        super().__init__()
        self._chunks: list[bytes] = []

    @property
    def chunks(self) -> list[bytes]:
        """What each ``recv()`` returned, in order, over all connections."""
        with self._lock:
            return list(self._chunks)

    def _converse(self, handler: socketserver.StreamRequestHandler) -> None:
        with contextlib.suppress(OSError):
            self._answer(handler.connection)

    def _answer(self, sock: socket.socket) -> None:
        sock.sendall(b"220 packets ESMTP\r\n")
        pending, in_data = b"", False
        while chunk := sock.recv(65536):
            with self._lock:
                self._chunks.append(chunk)
            pending += chunk
            while True:
                if in_data:
                    end = pending.find(b"\r\n.\r\n")
                    if end < 0:
                        break
                    pending, in_data = pending[end + 5 :], False
                    sock.sendall(b"250 Accepted\r\n")
                    continue
                line, found, rest = pending.partition(b"\r\n")
                if not found:
                    break
                pending = rest
                verb = line[:4].upper()
                if verb == b"EHLO":
                    sock.sendall(b"250-packets\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
                elif verb == b"DATA":
                    # The letter starts right after "DATA": its end may then be found at the very start.
                    pending, in_data = b"\r\n" + pending, True
                    sock.sendall(b"354 go ahead\r\n")
                elif verb == b"QUIT":
                    sock.sendall(b"221 Bye\r\n")
                    return
                else:
                    sock.sendall(b"250 OK\r\n")


class _Hostile:
    """A server on 127.0.0.1 whose answer never ends: dripped a byte at a time, or endless.

    ``drip`` sends one byte every ``interval`` seconds and never ends the
    line, so that no single read waits long; ``endless`` sends the same
    line again and again, without end. Either goes on until the client
    hangs up or the server stops; ``streamed`` counts the bytes sent.
    """

    def __init__(self, how: str, interval: float) -> None:
        if how not in ("drip", "endless"):
            raise ValueError(f"no such hostile server: {how}")
        self.how, self.interval = how, interval
        self.host = HOST
        self.port = 0
        self.streamed = 0
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> t.Self:
        listener = socket.create_server((HOST, 0))
        listener.settimeout(0.05)
        self._listener, self.port = listener, listener.getsockname()[1]
        self._spawn(self._accept, listener)
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            for conn in self._open:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        for thread in list(self._threads):
            thread.join(10)
        if self._listener is not None:
            self._listener.close()
        for conn in self._open:
            conn.close()

    def __enter__(self) -> t.Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _spawn(self, target: t.Callable[..., None], *args: t.Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            with self._lock:
                self._open.append(conn)
            self._spawn(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            self._converse(conn, conn.makefile("rb"))

    def _converse(self, conn: socket.socket, rfile: t.BinaryIO) -> None:
        raise NotImplementedError

    def _never_end(self, conn: socket.socket, head: bytes, line: bytes) -> None:
        """Send ``head``, then drip bytes or repeat ``line`` until told to stop."""
        conn.sendall(head)
        if self.how == "drip":
            while not self._stopping.wait(self.interval):
                conn.sendall(line[:1])
                self.streamed += 1
        else:
            lines = line * 64
            # A short pause per batch keeps a client without a cap from eating the test machine's memory.
            while not self._stopping.wait(0.001):
                conn.sendall(lines)
                self.streamed += len(lines)


class HostileServer(_Hostile):
    """An SMTP server (no TLS, no AUTH) whose reply at ``stage`` never ends.

    ``stage``: ``greeting``, ``ehlo`` or ``data`` (the reply after the
    letter's final dot). ``endless`` sends continuation lines (``250-...``).
    """

    def __init__(self, stage: str, how: str, *, interval: float = 0.2) -> None:
        if stage not in ("greeting", "ehlo", "data"):
            raise ValueError(f"no such hostile server: {stage}")
        super().__init__(how, interval)
        self.stage = stage

    def _reply_never_ends(self, conn: socket.socket, code: bytes) -> None:
        self._never_end(conn, code + b" " if self.how == "drip" else b"", code + b"-" + b"x" * 70 + b"\r\n")

    def _converse(self, conn: socket.socket, rfile: t.BinaryIO) -> None:
        if self.stage == "greeting":
            return self._reply_never_ends(conn, b"220")
        conn.sendall(b"220 hostile ESMTP\r\n")
        while not self._stopping.is_set():
            line = rfile.readline()
            if not line:
                return None
            verb = line[:4].upper()
            if verb == b"EHLO":
                if self.stage == "ehlo":
                    return self._reply_never_ends(conn, b"250")
                conn.sendall(b"250-hostile\r\n250 8BITMIME\r\n")
            elif verb == b"DATA":
                conn.sendall(b"354 go ahead\r\n")
                while rfile.readline() not in (b".\r\n", b""):
                    pass
                if self.stage == "data":
                    return self._reply_never_ends(conn, b"250")
                conn.sendall(b"250 Accepted\r\n")
            elif verb == b"QUIT":
                conn.sendall(b"221 Bye\r\n")
                return None
            else:
                conn.sendall(b"250 OK\r\n")
        return None


class HostileTokenEndpoint(_Hostile):
    """An OAuth2 token endpoint (plain HTTP) whose answer's body never ends.

    ``drip`` announces a JSON body of a megabyte and drips it; ``endless``
    sends a body without a length that never ends. ``token_url`` is its address.
    """

    def __init__(self, how: str, *, interval: float = 0.2) -> None:
        super().__init__(how, interval)

    @property
    def token_url(self) -> str:
        return f"http://{self.host}:{self.port}/token"

    def _converse(self, conn: socket.socket, rfile: t.BinaryIO) -> None:
        length = 0
        while (line := rfile.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        rfile.read(length)
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        if self.how == "drip":
            head += b"Content-Length: 1048576\r\n\r\n{"
        else:
            head += b"Connection: close\r\n\r\n{"
        self._never_end(conn, head, b" " * 72)
