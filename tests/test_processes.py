"""Two processes on one SQLite file: a change made in one is used by the other on its next send.

The other process is a real one (``subprocess``), built with ``make_site``
on the same instance folder, and kept running across the changes: no restart.
It reads commands on stdin and answers one line each.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask_mail import Message

from flask_smtp_accounts.routing import RULE_DISABLED, RULE_LARGEST_ID

TESTS = Path(__file__).parent

CHILD = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from apps import make_site
    from flask_mail import Message

    config = json.loads(sys.argv[3])
    site = make_site(__import__("pathlib").Path(sys.argv[2]), enabled=False, **config)
    print("ready", flush=True)
    for line in sys.stdin:
        command, _, arg = line.strip().partition(" ")
        with site.app.app_context():
            if command == "send":
                sender, _, subject = arg.partition(" ")
                message = Message(subject, sender=sender, recipients=["bob@example.org"], body="x")
                choice = site.ext.choose_account(message)
                site.mail.send(message)
                print("sent", choice.rule, choice.account.id if choice.account else 0, flush=True)
            elif command == "set":
                name, _, value = arg.partition("=")
                site.ext.update_settings(**{name: value})
                print("set", flush=True)
            elif command == "quit":
                site.db.session.remove()
                site.db.engine.dispose()
                print("bye", flush=True)
                break
    """
)


class OtherProcess:
    """The same site, served by another process."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc

    def ask(self, command: str, timeout: float = 30) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        if command:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        readable, _, _ = select.select([self.proc.stdout], [], [], timeout)
        assert readable, f"the other process did not answer {command!r}"
        answer = self.proc.stdout.readline().strip()
        assert answer, f"the other process ended: exit code {self.proc.poll()}"
        return answer

    def send(self, sender: str, subject: str) -> tuple[str, int]:
        words = self.ask(f"send {sender} {subject}").split()
        assert words[0] == "sent", words
        return words[1], int(words[2])


@pytest.fixture
def other_process(site, tmp_path: Path, encryption_key: str, certs, smtp_server) -> Iterator[OtherProcess]:
    script = tmp_path / "other_process.py"
    script.write_text(CHILD)
    config: dict[str, Any] = {
        "SMTP_ACCOUNTS_ENCRYPTION_KEYS": encryption_key,
        "SMTP_ACCOUNTS_CA_FILE": str(certs.ca_cert),
        "MAIL_PORT": smtp_server.port,
    }
    stderr = (tmp_path / "other_process.err").open("w")
    proc = subprocess.Popen(
        [sys.executable, str(script), str(TESTS), str(Path(site.app.instance_path)), json.dumps(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "error::ResourceWarning"},
    )
    other = OtherProcess(proc)
    try:
        assert other.ask("") == "ready", (tmp_path / "other_process.err").read_text()
        yield other
        assert other.ask("quit") == "bye"
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.close()
        proc.stdout.close()
        stderr.close()


def subjects(server) -> list[str]:
    return [r.message["Subject"] for r in server.received]


def test_account_changes_reach_the_other_process_without_a_restart(
    ext, add_account, make_smtp_server, smtp_server, other_process
):
    first, second, third = make_smtp_server(), make_smtp_server(), make_smtp_server()
    account = add_account(first)

    assert other_process.send("hello@example.com", "one") == (RULE_LARGEST_ID, account.id)
    first.wait_for(1)

    ext.update_account(account.id, check=False, port=second.port)
    assert other_process.send("hello@example.com", "two") == (RULE_LARGEST_ID, account.id)
    second.wait_for(1)

    newer = add_account(third)
    assert other_process.send("HELLO@example.com", "three") == (RULE_LARGEST_ID, newer.id)
    third.wait_for(1)

    ext.update_account(newer.id, check=False, active=False)
    assert other_process.send("hello@example.com", "four") == (RULE_LARGEST_ID, account.id)
    second.wait_for(2)

    ext.delete_account(account.id)
    assert other_process.send("hello@example.com", "five")[1] == 0
    smtp_server.wait_for(1)

    assert (subjects(first), subjects(second), subjects(third), subjects(smtp_server)) == (
        ["one"],
        ["two", "four"],
        ["three"],
        ["five"],
    )


def test_setting_changes_reach_the_other_process_without_a_restart(
    ext, add_account, make_smtp_server, smtp_server, other_process
):
    server = make_smtp_server()
    add_account(server)
    assert other_process.send("hello@example.com", "routed")[0] == RULE_LARGEST_ID

    ext.update_settings(enabled=False)
    assert other_process.send("hello@example.com", "plain")[0] == RULE_DISABLED

    ext.update_settings(enabled=True)
    assert other_process.send("hello@example.com", "routed again")[0] == RULE_LARGEST_ID

    server.wait_for(2)
    smtp_server.wait_for(1)
    assert (subjects(server), subjects(smtp_server)) == (["routed", "routed again"], ["plain"])


def test_a_change_made_by_the_other_process_is_used_here(
    ext, mail, add_account, make_smtp_server, smtp_server, other_process
):
    server = make_smtp_server()
    add_account(server)
    mail.send(Message("before", sender="hello@example.com", recipients=["bob@example.org"], body="x"))
    server.wait_for(1)

    assert other_process.ask("set enabled=False") == "set"
    mail.send(Message("after", sender="hello@example.com", recipients=["bob@example.org"], body="x"))

    smtp_server.wait_for(1)
    assert (subjects(server), subjects(smtp_server)) == (["before"], ["after"])
    assert ext.settings.enabled is False
