"""Sockets on 127.0.0.1 that misbehave below SMTP: one that never greets, one that closes at once."""

from __future__ import annotations

import select
import socket
import threading
from types import TracebackType
from typing import Self

from .servers import HOST


class _SocketServer:
    """Thread accepting TCP connections on 127.0.0.1 and passing each to :meth:`_accepted`."""

    def __init__(self) -> None:
        self.host = HOST
        self._port: int | None = None
        self.connections = 0
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.host}:{self._port}>"

    @property
    def port(self) -> int:
        """Listening port; set by :meth:`start`."""
        if self._port is None:
            raise RuntimeError(f"{self!r} was never started")
        return self._port

    def _accepted(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def _close_accepted(self) -> None:
        pass

    def _serve(self, listener: socket.socket) -> None:
        while not self._stopping.is_set():
            readable, _, _ = select.select([listener], [], [], 0.05)
            if not readable:
                continue
            try:
                conn, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                continue
            self.connections += 1
            self._accepted(conn)

    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError(f"{self!r} already started")
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.bind((self.host, 0))
            listener.listen(16)
            listener.setblocking(False)
        except BaseException:
            listener.close()
            raise
        self._listener, self._port = listener, listener.getsockname()[1]
        self._stopping.clear()
        self._thread = threading.Thread(target=self._serve, args=(listener,), name=repr(self), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stopping.set()
            thread.join(5)
            if thread.is_alive():
                raise RuntimeError(f"{self!r}: server thread did not stop")
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self._close_accepted()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class HangingServer(_SocketServer):
    """Accepts connections and never sends a greeting (client timeout tests)."""

    def __init__(self) -> None:
        super().__init__()
        self._open: list[socket.socket] = []

    def _accepted(self, conn: socket.socket) -> None:
        self._open.append(conn)

    def _close_accepted(self) -> None:
        while self._open:
            self._open.pop().close()


class ClosingServer(_SocketServer):
    """Accepts connections and closes them at once, before any greeting."""

    def _accepted(self, conn: socket.socket) -> None:
        conn.close()
