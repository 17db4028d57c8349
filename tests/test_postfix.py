"""Against Postfix: its ``smtp-sink`` (Debian's ``postfix`` package) offers PIPELINING and keeps each letter.

``smtp-sink -d`` writes every finished transaction to a file of its own
before it answers the end of the data, with the envelope (``X-Mail-Args``,
``X-Rcpt-Args``) above the letter: what Postfix received, read back.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import typing as t
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask_mail import Message

from flask_smtp_accounts.testing import free_port

SMTP_SINK_PATHS = ("/usr/sbin/smtp-sink", "/usr/lib/postfix/sbin/smtp-sink")
#: Seconds smtp-sink has to listen once started.
START_DEADLINE_S = 10


def smtp_sink_path() -> str | None:
    found = next((path for path in SMTP_SINK_PATHS if os.access(path, os.X_OK)), None)
    return found or shutil.which("smtp-sink")


class SmtpSink:
    """``smtp-sink`` on 127.0.0.1, dumping each letter it takes into :attr:`folder`."""

    def __init__(self, path: str) -> None:
        # Not under pytest's tmp_path: run as root, smtp-sink drops to "nobody", who may not enter that.
        self.folder = Path(tempfile.mkdtemp(prefix="smtp-sink-"))
        self.host, self.port = "127.0.0.1", free_port()
        command = [path, "-d", f"{self.folder}/letter."]
        if os.geteuid() == 0:
            os.chown(self.folder, pwd.getpwnam("nobody").pw_uid, -1)
            command += ["-u", "nobody"]  # smtp-sink refuses to run as root without it
        command += [f"{self.host}:{self.port}", "16"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def wait_listening(self) -> None:
        deadline = time.monotonic() + START_DEADLINE_S
        while True:
            if self.process.poll() is not None:
                assert self.process.stderr is not None
                raise AssertionError(f"smtp-sink exited: {self.process.stderr.read().decode()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as sock:
                    sock.recv(512)
                    sock.sendall(b"QUIT\r\n")
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"smtp-sink does not listen on port {self.port}") from None
                time.sleep(0.05)

    def letters(self) -> list[email.message.EmailMessage]:
        """Every letter smtp-sink finished, its envelope in the ``X-Mail-Args`` and ``X-Rcpt-Args`` headers."""
        return [
            t.cast(
                email.message.EmailMessage,
                email.message_from_bytes(path.read_bytes(), policy=email.policy.default),
            )
            for path in sorted(self.folder.iterdir())
        ]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stderr is not None:
            self.process.stderr.close()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    path = smtp_sink_path()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("smtp-sink is missing; .ci/run installs Debian's postfix package, which has it")
        pytest.skip("Postfix's smtp-sink is not installed (Debian: apt-get install postfix)")
    sink = SmtpSink(path)
    try:
        sink.wait_listening()
        yield sink
    finally:
        sink.stop()


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining on", "pipelining off"])
@pytest.mark.parametrize("drained", [False, True], ids=["sent at once", "drained from the outbox"])
def test_letters_reach_postfix_once_each_with_their_envelope(pipelining, drained, mail, ext, smtp_sink):
    account = ext.add_account(
        check=False,
        sender_email="shop@example.com",
        host=smtp_sink.host,
        port=smtp_sink.port,
        security="none",
        auth="none",
        pipelining=pipelining,
    )
    ext.update_settings(log_level=2)
    letters = [
        Message(f"Order {n}", sender="shop@example.com", recipients=recipients, body=f"Letter {n}.")
        for n, recipients in enumerate(
            [["ann@example.org"], ["bob@example.org", "cid@example.org"], ["dan@example.org"]], 1
        )
    ]
    with ext.outbox() if drained else contextlib.nullcontext(), mail.connect() as conn:
        for message in letters:
            conn.send(message)
    if drained:
        assert ext.deliver_queued(connections=1).sent == 3

    got = {letter["Message-ID"]: letter for letter in smtp_sink.letters()}
    assert sorted(got) == sorted(f"<{m.msgId.strip('<>')}>" for m in letters)
    for message in letters:
        received = got[f"<{message.msgId.strip('<>')}>"]
        assert received["Subject"] == message.subject
        assert received["X-Mail-Args"] == "<shop@example.com>"
        assert sorted(received.get_all("X-Rcpt-Args")) == [f"<{r}>" for r in sorted(message.recipients)]
    assert [row.status for row in ext.messages().items] == ["sent"] * 3

    log = ext.read_log(account.id, "send", length=1 << 20).text
    assert "S: 250-PIPELINING" in log
    # Pipelined, the log has every command of a letter before the first reply to them.
    assert ("C: data\nS: 250 2.1.0 Ok" in log.replace("\r", "")) is pipelining
    # Drained and pipelined, letters 2 and 3 had their envelope written with the data of the letter before.
    assert sum(
        line.startswith("C: [letter data") and following == "C: mail FROM:<shop@example.com>"
        for line, following in itertools.pairwise(log.splitlines())
    ) == (2 if pipelining and drained else 0)
