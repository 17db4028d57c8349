"""A drainer killed with SIGKILL in the middle of a batch: every letter is received once, none twice.

The drainer is a real child process (``subprocess``) running
``deliver_queued`` against a real SMTP server that stalls in the DATA of
its sixth letter, so the kill lands with letters sent, one sending and the
rest of the batch claimed. The end of the leases is simulated by moving
``claimed_until`` into the past; then a second drain runs here.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from apps import stored_rows
from test_outbox import expire_claims, queue_letters

TESTS = Path(__file__).parent

DRAINER = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from apps import make_site

    site = make_site(__import__("pathlib").Path(sys.argv[2]), enabled=False, **json.loads(sys.argv[3]))
    with site.app.app_context():
        site.ext.deliver_queued(connections=1)
    """
)

#: How long the stalled DATA waits to be let go; far longer than the test needs, so it never ends it.
STALL_DEADLINE_S = 60


@dataclass
class StallAfter:
    """aiosmtpd hooks: accept ``count`` letters, then hold every further DATA until :attr:`release` is set.

    A held DATA never accepts its letter: it answers 421 once released.
    """

    count: int
    accepted: int = 0
    stalled: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server, session, envelope) -> str | None:  # noqa: N802 - aiosmtpd's name
        if self.release.is_set():
            return None
        if self.accepted < self.count:
            self.accepted += 1
            return None
        self.stalled.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STALL_DEADLINE_S
        while not self.release.is_set() and loop.time() < deadline:
            await asyncio.sleep(0.01)
        return "421 4.3.0 Closing, the sender went away"


def test_a_drainer_killed_mid_batch_leaves_no_letter_twice_and_the_one_sending_interrupted(
    site, app, db, mail, ext, add_account, make_smtp_server, encryption_key, smtp_server
):
    stall = StallAfter(5)
    server = make_smtp_server(handler_hooks=stall)
    add_account(server, sender_email="shop@example.com")
    queued = queue_letters(ext, mail, 20)
    config = {"SMTP_ACCOUNTS_ENCRYPTION_KEYS": encryption_key, "MAIL_PORT": smtp_server.port}
    child = subprocess.Popen(
        [sys.executable, "-c", DRAINER, str(TESTS), str(Path(app.instance_path)), json.dumps(config)]
    )
    try:
        assert stall.stalled.wait(60), "the drainer never reached the sixth letter"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
    at_kill = Counter(r["status"] for r in stored_rows(app, "SELECT status FROM smtp_accounts_message"))
    assert at_kill == {"sent": 5, "sending": 1, "claimed": 14}

    stall.release.set()
    expire_claims(db)
    second = ext.deliver_queued(connections=4)

    received = Counter(r.message_id for r in server.wait_for(19))
    assert second.sent == 14 and set(received.values()) == {1}
    [interrupted] = ext.messages(status="interrupted").items
    assert interrupted.message_id in queued and interrupted.message_id not in received
    assert set(received) == set(queued) - {interrupted.message_id}
    sent = stored_rows(app, "SELECT message_id FROM smtp_accounts_message WHERE status = 'sent'")
    assert Counter(r["message_id"] for r in sent) == received
