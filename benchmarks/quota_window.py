"""A limit of N letters a minute, held by several worker processes sending through one account.

    python benchmarks/quota_window.py                          # 4 workers, 600 a minute, 150 s, SQLite
    python benchmarks/quota_window.py --database-url URL       # on PostgreSQL or MySQL/MariaDB
    python benchmarks/quota_window.py --seconds 20 --limit 60  # a quick look

Each worker is a process of its own that sends letters inline (``mail.send``)
through the same account, with ``queue_undelivered`` on: a letter that finds
the account at its limit is queued, and the worker waits for the slot the
error names before sending the next one. The receiving server (a local
aiosmtpd server in this process) notes when each letter arrives; the script
prints the highest count of letters received in any sliding 60 s window
(``[t, t + 60 s)`` from each arrival), the letters sent and queued, and
nothing else. Nothing here asserts anything.
"""

from __future__ import annotations

import argparse
import bisect
import multiprocessing
import os
import sys
import tempfile
import threading
import time
import typing as t

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from cryptography.fernet import Fernet  # noqa: E402
from databases import Databases, url_from_environment  # noqa: E402
from flask import Flask  # noqa: E402
from flask_mail import Mail, Message  # noqa: E402
from flask_sqlalchemy import SQLAlchemy  # noqa: E402

from flask_smtp_accounts import SMTPAccounts, signals  # noqa: E402
from flask_smtp_accounts.models import utcnow  # noqa: E402
from flask_smtp_accounts.testing import SMTPServer  # noqa: E402

SENDER = "news@example.com"
WINDOW_S = 60.0


def make_app(database: dict[str, t.Any], key: str, port: int) -> tuple[Flask, Mail, SMTPAccounts, SQLAlchemy]:
    """The site, as each worker process builds it; Flask-Mail's own server is never used."""
    app = Flask("quota_window")
    app.config.update(database, SMTP_ACCOUNTS_ENCRYPTION_KEYS=key, SMTP_ACCOUNTS_REGISTER_CLI=False)
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=port, SMTP_ACCOUNTS_ALERT_THREAD=False)
    db = SQLAlchemy(app)
    mail = Mail(app)
    return app, mail, SMTPAccounts(app, db=db), db


def worker(
    database: dict[str, t.Any], key: str, port: int, name: str, seconds: float, start: t.Any, counts: t.Any
) -> None:
    """Once every worker is ready (``start``), send letters for ``seconds``; at the limit, wait for the slot named."""
    app, mail, _, db = make_app(database, key, port)
    slot: list[t.Any] = []
    start.wait()
    until = time.time() + seconds

    def queued(sender: t.Any, *, error: t.Any = None, **extra: t.Any) -> None:
        slot.append(getattr(error, "retry_at", None))

    signals.message_queued.connect(queued, app)
    sent = waits = 0
    with app.app_context():
        while time.time() < until:
            slot.clear()
            mail.send(
                Message(f"{name} {sent + waits}", sender=SENDER, recipients=["r@example.org"], body="x")
            )
            if not slot:
                sent += 1
                continue
            waits += 1
            if slot[0] is not None:
                left = (slot[0] - utcnow()).total_seconds()
                time.sleep(max(0.0, min(left, until - time.time())))
        db.session.remove()
        db.engine.dispose()
    counts.put((name, sent, waits))


def busiest_window(arrivals: list[float]) -> int:
    """The most arrivals in any ``[t, t + 60 s)`` that starts at an arrival."""
    arrivals = sorted(arrivals)
    return max((bisect.bisect_left(arrivals, a + WINDOW_S) - i for i, a in enumerate(arrivals)), default=0)


class Arrivals:
    """aiosmtpd hook: the time each letter's DATA arrives (``time.time()``), before it is accepted."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server: t.Any, session: t.Any, envelope: t.Any) -> None:  # noqa: N802 - aiosmtpd
        with self._lock:
            self.times.append(time.time())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--limit", type=int, default=600, help="the account's limit_per_minute")
    parser.add_argument("--seconds", type=float, default=150.0, help="how long the workers send")
    parser.add_argument("--database-url", default=url_from_environment(), help="PostgreSQL or MySQL/MariaDB")
    args = parser.parse_args()

    arrivals = Arrivals()
    databases = Databases(args.database_url)
    key = Fernet.generate_key().decode()
    with tempfile.TemporaryDirectory() as folder, SMTPServer(handler_hooks=arrivals) as server:
        database = databases.config(folder)
        app, _, ext, db = make_app(database, key, server.port)
        with app.app_context():
            db.create_all()
            ext.update_settings(enabled=True, queue_undelivered=True, save_logs=False)
            ext.add_account(
                check=False,
                sender_email=SENDER,
                host=server.host,
                port=server.port,
                security="none",
                auth="none",
                limit_per_minute=args.limit,
            )
            db.session.remove()
            db.engine.dispose()
        spawn = multiprocessing.get_context("spawn")
        counts = spawn.Queue()
        start = spawn.Barrier(args.workers + 1)
        processes = [
            spawn.Process(
                target=worker, args=(database, key, server.port, f"w{n}", args.seconds, start, counts)
            )
            for n in range(args.workers)
        ]
        for process in processes:
            process.start()
        start.wait(timeout=120)
        started = time.time()
        results = [counts.get(timeout=args.seconds + 120) for _ in processes]
        for process in processes:
            process.join(60)
        elapsed = time.time() - started
        received = len(server.received)
        databases.drop()
    sent = sum(r[1] for r in results)
    waits = sum(r[2] for r in results)
    print(f"database: {databases.describe()}")
    print(
        f"{args.workers} workers, limit_per_minute={args.limit}, sending for {args.seconds:.0f} s ({elapsed:.0f} s in all)"
    )
    print(
        f"letters received by the server: {received} (sent per the workers: {sent}; queued at the limit: {waits})"
    )
    print(f"highest count in any sliding 60 s window of arrivals: {busiest_window(arrivals.times)}")


if __name__ == "__main__":
    main()
