"""``flask smtp-accounts deliver --forever`` stopped by a signal: it finishes the letter on the wire and gives the rest back.

The command runs in a real child process. The server holds the first
letter's DATA, so the signal lands with one letter sending and the rest
of the batch claimed; the server lets the letter go once the drainer has
said it is stopping.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest
from apps import stored_rows
from test_connection_slots import DEADLINE_S, TESTS, HoldFirst, wait_for_line
from test_outbox import queue_letters

COMMAND = textwrap.dedent(
    """
    import json, logging, pathlib, signal, sys
    sys.path.insert(0, sys.argv[1])
    from apps import make_site

    # Ctrl+C as at a terminal: a suite run in the background by a script (as CI runs two of them)
    # ignores SIGINT, and a child inherits that; Python then installs no KeyboardInterrupt handler.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    site = make_site(pathlib.Path(sys.argv[2]), enabled=False, **json.loads(sys.argv[3]))
    with site.app.app_context():
        site.app.cli.main(
            ["smtp-accounts", "deliver", "--forever", "--connections", "1"], prog_name="flask"
        )
    """
)


@pytest.mark.parametrize("stop_with", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stopped_forever_drain_exits_cleanly_and_gives_back_its_claims(
    app, mail, ext, add_account, make_smtp_server, encryption_key, smtp_server, stop_with
):
    hold = HoldFirst()
    server = make_smtp_server(handler_hooks=hold)
    hold.server = server
    add_account(server, sender_email="shop@example.com")
    queued = queue_letters(ext, mail, 6)
    config = {"SMTP_ACCOUNTS_ENCRYPTION_KEYS": encryption_key, "MAIL_PORT": smtp_server.port}
    child = subprocess.Popen(
        [sys.executable, "-c", COMMAND, str(TESTS), str(Path(app.instance_path)), json.dumps(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert hold.held.wait(DEADLINE_S), "the drainer never sent"
        child.send_signal(stop_with)
        wait_for_line(child, "stopping")
        hold.release.set()
        out, err = child.communicate(timeout=DEADLINE_S)
    finally:
        hold.release.set()
        if child.poll() is None:
            child.kill()
            child.communicate()

    assert child.returncode == 0, err
    assert "Stopped: the letters being sent were finished, the rest went back to the queue." in out
    [received] = server.wait_for(1)
    assert received.message_id in queued
    statuses = Counter(r["status"] for r in stored_rows(app, "SELECT status FROM smtp_accounts_message"))
    assert statuses == {"sent": 1, "queued": 5}
