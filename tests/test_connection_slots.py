"""``max_connections``: the connections open to an account's server at once, capped across processes.

The server counts its open sessions (``SMTPServer.most_sessions_at_once``).
The processes are real ones (``subprocess``) draining one queue; a server
hook holds the first letter of the first drainer until the second drainer
has shown it found the account's one connection taken (its log line), or
until a second connection arrives (what happens without the cap).
"""

from __future__ import annotations

import asyncio
import json
import select
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from apps import stored_rows
from flask_mail import Message
from test_outbox import queue_letters

from flask_smtp_accounts import DeliveryError, InvalidAccountError
from flask_smtp_accounts.errors import ConnectionsBusyError
from flask_smtp_accounts.models import utcnow
from flask_smtp_accounts.testing import SMTPServer

TESTS = Path(__file__).parent

DRAINER = textwrap.dedent(
    """
    import json, logging, sys
    sys.path.insert(0, sys.argv[1])
    from apps import make_site

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    site = make_site(__import__("pathlib").Path(sys.argv[2]), enabled=False, **json.loads(sys.argv[3]))
    with site.app.app_context():
        report = site.ext.deliver_queued(**json.loads(sys.argv[4]))
        site.db.engine.dispose()
    print("sent", report.sent, flush=True)
    """
)

#: Every wait of these tests on another process or a server ends by then.
DEADLINE_S = 60


@dataclass
class HoldFirst:
    """aiosmtpd hooks: hold the first DATA until :attr:`release` is set or a second session opens."""

    server: SMTPServer | None = None
    held: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    seen: int = 0

    async def handle_DATA(self, server, session, envelope) -> str | None:  # noqa: N802 - aiosmtpd's name
        self.seen += 1
        if self.seen > 1:
            return None
        self.held.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE_S
        assert self.server is not None, "the test sets the server before sending"
        while not self.release.is_set() and self.server.sessions_open < 2 and loop.time() < deadline:
            await asyncio.sleep(0.01)
        return None


def start_drainer(app, config: dict, **options) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            DRAINER,
            str(TESTS),
            str(Path(app.instance_path)),
            json.dumps(config),
            json.dumps(options),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_line(process: subprocess.Popen, text: str, give_up: threading.Event | None = None) -> list[str]:
    """Lines of the process's stderr up to the first holding ``text`` (or until ``give_up`` is set)."""
    lines: list[str] = []
    stderr = process.stderr
    assert stderr is not None, "the drainer's stderr is a pipe"
    deadline = time.monotonic() + DEADLINE_S
    while not (give_up is not None and give_up.is_set()):
        assert time.monotonic() < deadline, f"no {text!r} from the drainer: {lines}"
        readable, _, _ = select.select([stderr], [], [], 0.05)
        if readable:
            line = stderr.readline()
            assert line, f"the drainer ended first: {lines}"
            lines.append(line)
            if text in line:
                break
    return lines


def finish(process: subprocess.Popen) -> str:
    out, err = process.communicate(timeout=DEADLINE_S)
    assert process.returncode == 0, err
    return out


def test_two_drainer_processes_never_open_two_connections_to_an_account_capped_at_one(
    app, mail, ext, add_account, make_smtp_server, encryption_key, smtp_server
):
    hold = HoldFirst()
    server = make_smtp_server(handler_hooks=hold)
    hold.server = server
    add_account(server, sender_email="shop@example.com", max_connections=1)
    queued = queue_letters(ext, mail, 10)
    config = {"SMTP_ACCOUNTS_ENCRYPTION_KEYS": encryption_key, "MAIL_PORT": smtp_server.port}

    first = start_drainer(app, config, connections=1, limit=3)
    second = None
    try:
        assert hold.held.wait(DEADLINE_S), "the first drainer never sent"
        second = start_drainer(app, config, connections=2)
        second_said = wait_for_line(second, "connections of account", give_up=_second_session(server))
        hold.release.set()
        first_out = finish(first)
        second_out = finish(second)
    finally:
        hold.release.set()
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.communicate()

    assert server.most_sessions_at_once == 1
    assert any("all 1 connections of account" in line for line in second_said)
    assert (first_out, second_out) == ("sent 3\n", "sent 7\n")
    assert Counter(r.message_id for r in server.wait_for(10)) == Counter(queued)


def _second_session(server) -> threading.Event:
    """Set as soon as the server has two sessions open at once: the cap failed, stop waiting."""
    seen = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + DEADLINE_S
        while server.most_sessions_at_once < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        seen.set()

    threading.Thread(target=watch, daemon=True).start()
    return seen


def test_eight_threads_keep_to_the_cap(app, mail, ext, add_account, make_smtp_server):
    server = make_smtp_server()
    add_account(server, sender_email="shop@example.com", max_connections=2)
    queued = queue_letters(ext, mail, 40)

    report = ext.deliver_queued(connections=8)

    assert report.sent == 40 and Counter(r.message_id for r in server.wait_for(40)) == Counter(queued)
    assert server.most_sessions_at_once <= 2
    slots = stored_rows(app, "SELECT holder FROM smtp_accounts_connection_slot")
    assert [r["holder"] for r in slots] == [None, None]  # every slot given back


def test_an_inline_letter_meeting_a_full_account_goes_to_its_backup(
    app, mail, ext, add_account, make_smtp_server
):
    capped_server, backup_server = make_smtp_server(), make_smtp_server()
    backup = add_account(backup_server, sender_email="shop@example.com")
    capped = add_account(
        capped_server, sender_email="shop@example.com", max_connections=1, backup_ids=[backup.id]
    )
    ext.update_settings(timeout_s=3)  # the wait for a slot; the healthy backup answers within it too
    other = app.extensions["smtp_accounts"].connection_slots.take(capped.id, 1)  # another worker's connection

    mail.send(Message("Hi", sender="shop@example.com", recipients=["bob@example.org"], body="x"))

    assert capped_server.received == [] and len(backup_server.wait_for(1)) == 1
    [row] = ext.messages().items
    assert row.history[0]["error"].endswith("all 1 connections of the account are busy")
    assert not ext.account_health().get(capped.id) or not ext.account_health()[capped.id].cooling_down
    assert other is not None


def test_without_a_backup_the_inline_letter_fails_with_a_temporary_error(
    app, mail, ext, add_account, make_smtp_server
):
    server = make_smtp_server()
    capped = add_account(server, sender_email="shop@example.com", max_connections=1)
    ext.update_settings(timeout_s=1)
    app.extensions["smtp_accounts"].connection_slots.take(capped.id, 1)

    with pytest.raises(ConnectionsBusyError) as busy:
        mail.send(Message("Hi", sender="shop@example.com", recipients=["bob@example.org"], body="x"))

    assert isinstance(busy.value, DeliveryError) and busy.value.temporary and busy.value.stage == "connect"
    assert server.received == []


def test_a_slot_left_by_a_killed_process_frees_at_its_lease_end(
    app, db, mail, ext, add_account, make_smtp_server
):
    server = make_smtp_server()
    capped = add_account(server, sender_email="shop@example.com", max_connections=1)
    slots = app.extensions["smtp_accounts"].connection_slots
    assert slots.take(capped.id, 1) is not None  # then its process is killed: it is never freed
    assert slots.take(capped.id, 1) is None

    with db.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE smtp_accounts_connection_slot SET lease_until = :past"),
            {"past": utcnow() - timedelta(seconds=1)},
        )
    mail.send(Message("Hi", sender="shop@example.com", recipients=["bob@example.org"], body="x"))

    assert len(server.wait_for(1)) == 1


@pytest.mark.parametrize("value", [-1, 101, "many", 2.5])
def test_max_connections_out_of_range_is_refused(ext, add_account, make_smtp_server, value):
    with pytest.raises(InvalidAccountError, match="^max_connections: must be a whole number from 0 to 100"):
        add_account(make_smtp_server(), max_connections=value)


@pytest.mark.one_database
def test_the_test_server_counts_the_sessions_open_at_once(starttls_server, certs):
    import smtplib
    import ssl

    context = ssl.create_default_context(cafile=str(certs.ca_cert))
    with smtplib.SMTP(starttls_server.host, starttls_server.port, timeout=10) as first:
        first.starttls(context=context)  # the same session, on TLS now
        first.noop()
        assert (starttls_server.sessions_open, starttls_server.most_sessions_at_once) == (1, 1)
        with smtplib.SMTP(starttls_server.host, starttls_server.port, timeout=10) as second:
            second.noop()
            assert (starttls_server.sessions_open, starttls_server.most_sessions_at_once) == (2, 2)
    assert starttls_server.most_sessions_at_once == 2
