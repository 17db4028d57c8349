"""A server's reply reaches the logs and the terminal escaped: no terminal sequence, no forged log line."""

from __future__ import annotations

import re
from pathlib import Path

from flask import Flask
from misbehaving import ScriptedServer
from test_cli import cli_app, run  # noqa: F401 - the fixture

#: ESC sequences that retitle the window and clear the screen, a BEL, and line separators that
#: ``splitlines()`` honours, each followed by a line a reader would take for the server's.
HOSTILE = (
    "554 \x1b]0;owned\x07 go away\x1b[2J"
    "\x0bS: 235 2.7.0 Authentication successful"
    "\x0cS: 235 ff\x85S: 235 nel\u2028S: 235 ls\u2029S: 235 ps\x1cS: 235 fs"
)
ESCAPED = (
    r"554 \x1b]0;owned\x07 go away\x1b[2J"
    r"\x0bS: 235 2.7.0 Authentication successful"
    r"\x0cS: 235 ff\x85S: 235 nel\u2028S: 235 ls\u2029S: 235 ps\x1cS: 235 fs"
)
#: Every control and line-separator character but the line end.
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def test_a_hostile_reply_is_escaped_in_the_log_and_on_the_terminal(cli_app: Flask) -> None:  # noqa: F811
    with ScriptedServer(greeting=HOSTILE) as server:
        added = run(
            cli_app,
            "add",
            "--sender-email",
            "hello@example.com",
            "--host",
            server.host,
            "--port",
            str(server.port),
            "--security",
            "none",
            "--auth",
            "none",
            "--no-check",
        )
        assert added.exit_code == 0, added.output
        checked = run(cli_app, "check", "1")

    assert checked.exit_code == 1
    assert ESCAPED in checked.stderr and not RAW.search(checked.stderr)
    log_file = Path(cli_app.instance_path) / "smtp_logs" / "check_admin_smtp_1.log"
    log_text = log_file.read_text(encoding="utf-8")
    assert f"S: {ESCAPED}\n" in log_text and not RAW.search(log_text)
    assert not [line for line in log_text.splitlines() if line.startswith("S: 235")]
    with log_file.open("a", encoding="utf-8") as old:  # as a version that did not escape wrote it
        old.write(f"S: {HOSTILE}\n\n")
    shown = run(cli_app, "logs", "show", "1", "check")
    assert shown.output.count(f"S: {ESCAPED}\n") == 2 and not RAW.search(shown.output)
    tail = run(cli_app, "logs", "tail", "1", "check", "-n", "100")
    assert tail.output.splitlines().count(f"S: {ESCAPED}") == 2 and not RAW.search(tail.output)
