"""A fast local SMTP sink in its own process, so that it never shares the sender's GIL.

Postfix's ``smtp-sink`` when it is installed (it answers in C and keeps no
data); otherwise an aiosmtpd server that accepts and discards every letter.
Run as a script, this module *is* that aiosmtpd sink: it prints its port on
the first line of stdout and stops when its stdin closes, so it never
outlives the benchmark that started it. With ``--starttls CERT KEY`` it is
instead the test suite's recording server (``flask_smtp_accounts.testing``)
requiring STARTTLS and then AUTH with its test credentials, as a real
submission server does; Postfix's ``smtp-sink`` can do neither.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import typing as t
from dataclasses import dataclass, field

#: How :func:`start_secure_sink` hands the credentials to the sink's process.
CREDENTIALS_ENV = "SMTP_ACCOUNTS_BENCH_SINK_CREDENTIALS"
SMTP_SINK_PATHS = ("/usr/sbin/smtp-sink", "/usr/lib/postfix/sbin/smtp-sink")


@dataclass
class Sink:
    """A running sink: where it listens, what it is, and its process."""

    kind: str
    host: str
    port: int
    process: subprocess.Popen[bytes] = field(repr=False)
    #: Stops when its stdin closes (the aiosmtpd sink); else it gets SIGTERM.
    stops_on_eof: bool = False

    def stop(self) -> None:
        if self.process.stdout is not None:
            self.process.stdout.close()
        if self.process.poll() is not None:
            return
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=5 if self.stops_on_eof else 0.01)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def smtp_sink_path() -> str | None:
    """Postfix's ``smtp-sink``, if installed."""
    for path in SMTP_SINK_PATHS:
        if os.access(path, os.X_OK):
            return path
    return shutil.which("smtp-sink")


def start_sink(prefer: str = "auto") -> Sink:
    """Start the fastest sink available (``prefer``: ``auto``, ``smtp-sink`` or ``aiosmtpd``)."""
    path = smtp_sink_path()
    if prefer == "smtp-sink" and path is None:
        raise SystemExit("smtp-sink is not installed (Debian: apt-get install postfix).")
    if path is not None and prefer in ("auto", "smtp-sink"):
        return _start_smtp_sink(path)
    return _start_aiosmtpd_sink()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited at start (code {process.returncode}).")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.recv(512)
                s.sendall(b"QUIT\r\n")
                return
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit(f"{what} did not start listening on 127.0.0.1:{port}.")


def _start_smtp_sink(path: str) -> Sink:
    port = _free_port()
    command = [path, "-c"]
    if os.geteuid() == 0:
        command += ["-u", "nobody"]  # smtp-sink refuses to run as root without it
    command += [f"127.0.0.1:{port}", "256"]
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _wait_listening(port, process, "smtp-sink")
    return Sink("postfix smtp-sink", "127.0.0.1", port, process)


def start_script(path: str, args: list[str], kind: str, env: dict[str, str] | None = None) -> Sink:
    """Run ``path`` with this Python; it prints its port first and stops when its stdin closes."""
    process = subprocess.Popen(
        [sys.executable, path, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=None if env is None else {**os.environ, **env},
    )
    assert process.stdout is not None
    line = process.stdout.readline().decode().strip()
    if not line.isdigit():
        process.kill()
        process.wait()
        raise SystemExit(f"the {kind} did not start: {line!r}")
    port = int(line)
    _wait_listening(port, process, f"the {kind}")
    return Sink(kind, "127.0.0.1", port, process, stops_on_eof=True)


def _start_aiosmtpd_sink() -> Sink:
    return start_script(os.path.abspath(__file__), [], "aiosmtpd (subprocess)")


def start_secure_sink(cert: str, key: str, login: str, password: str) -> Sink:
    """A sink requiring STARTTLS (with ``cert``/``key``) and then AUTH with ``login``/``password``.

    The credentials go through the environment, never the command line that
    other users of the machine can read.
    """
    return start_script(
        os.path.abspath(__file__),
        ["--starttls", cert, key],
        "aiosmtpd with STARTTLS and AUTH",
        env={CREDENTIALS_ENV: f"{login}\n{password}"},
    )


def _serve_secure(cert: str, key: str) -> None:
    """The recording test server with STARTTLS and AUTH, until stdin closes."""
    import logging
    from pathlib import Path

    from flask_smtp_accounts.testing import SMTPServer

    # aiosmtpd logs a deprecation notice of its own on every AUTH; the benchmark's output is for figures.
    logging.getLogger("mail.log").setLevel(logging.ERROR)

    login, password = os.environ.pop(CREDENTIALS_ENV).split("\n", 1)
    with SMTPServer(tls="starttls", cert=(Path(cert), Path(key)), auth=(login, password)) as server:
        print(server.port, flush=True)
        sys.stdin.buffer.read()


def _serve() -> None:
    """The aiosmtpd sink: accept everything, keep nothing."""
    from aiosmtpd.smtp import SMTP

    class Discard:
        async def handle_EHLO(  # noqa: N802
            self, server: object, session: t.Any, envelope: object, hostname: str, responses: list[str]
        ) -> list[str]:
            # Offers PIPELINING as smtp-sink and real servers do; aiosmtpd reads commands a line at a time.
            session.host_name = hostname  # aiosmtpd leaves this to a handler that answers EHLO
            return [*responses[:-1], "250-PIPELINING", responses[-1]]

        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:  # noqa: N802
            return "250 OK"

    async def main() -> None:
        loop = asyncio.get_running_loop()
        handler = Discard()
        server = await loop.create_server(
            lambda: SMTP(handler, hostname="sink.localhost", ident="benchmark sink"),
            "127.0.0.1",
            0,
            backlog=256,
        )
        await serve_until_stdin_closes(server)

    asyncio.run(main())


async def serve_until_stdin_closes(server: asyncio.Server) -> None:
    """Print the server's port on stdout, then serve until stdin closes (the parent ended or let go)."""
    loop = asyncio.get_running_loop()
    print(server.sockets[0].getsockname()[1], flush=True)
    stopped = asyncio.Event()

    def watch_stdin() -> None:
        sys.stdin.buffer.read()
        loop.call_soon_threadsafe(stopped.set)

    threading.Thread(target=watch_stdin, daemon=True).start()
    await stopped.wait()
    server.close()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--starttls"]:
        _serve_secure(sys.argv[2], sys.argv[3])
    else:
        _serve()
