"""How long the dashboard page takes with a big message log on SQLite.

    python benchmarks/dashboard.py                  # 1,000,000 rows (a minute to fill)
    python benchmarks/dashboard.py --rows 20000     # a smoke run (figures mean little)

Fills the message log with ``--rows`` rows spread over the last 30 days
(the default retention, so every row counts in the longest window)
(mostly sent, some failed, a few queued, over ten accounts and Flask-Mail's
own settings) with Core ``executemany`` in chunks, then renders the
dashboard through the test client: once to warm up, then ``--repeat``
times, and prints the fastest and the median render, and each aggregate
query on its own. The target is under a second; nothing here asserts it.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import typing as t
from datetime import timedelta

import sqlalchemy as sa
from cryptography.fernet import Fernet
from flask import Flask
from flask_admin import Admin
from flask_babel import Babel
from flask_mail import Mail
from flask_sqlalchemy import SQLAlchemy

from flask_smtp_accounts import SMTPAccounts
from flask_smtp_accounts.models import utcnow

ACCOUNTS = 10
CHUNK = 20_000
#: Rows spread over the message log's default retention: every row falls into the 30-day window.
SPAN = timedelta(days=30)
#: Status of a row by its share: 93 % sent, 5 % failed, 1 % suppressed, 1 % queued.
STATUSES = ["sent"] * 93 + ["failed"] * 5 + ["suppressed"] + ["queued"]


def make_app(folder: str, *, fresh: bool = True) -> tuple[Flask, SMTPAccounts]:
    app = Flask("dashboard_bench", instance_path=os.path.join(folder, "instance"))
    app.config.update(
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{os.path.join(folder, 'bench.db')}",
        SECRET_KEY="bench",
        SMTP_ACCOUNTS_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        MAIL_SUPPRESS_SEND=True,
    )
    db = SQLAlchemy(app)
    Mail(app)
    ext = SMTPAccounts(app, db=db)
    Babel(app)
    ext.init_admin(Admin(app))
    ext.access_rule(lambda permission: True)
    with app.app_context():
        db.create_all()
        for index in ext._state.models.Message.__table__.indexes:  # a kept database made by an older version
            index.create(db.engine, checkfirst=True)
        for i in range(1, ACCOUNTS + 1 if fresh else 1):
            ext.add_account(
                check=False,
                sender_email=f"a{i}@example.com",
                host="127.0.0.1",
                port=2525,
                security="none",
                auth="none",
            )
    return app, ext


def fill(app: Flask, ext: SMTPAccounts, rows: int) -> float:
    """Insert ``rows`` message log rows; returns the seconds it took."""
    rng = random.Random(14)
    now = utcnow()
    span_s = int(SPAN.total_seconds())
    accounts: list[int | None] = [*range(1, ACCOUNTS + 1), None]
    started = time.perf_counter()
    with app.app_context():
        table = ext._state.models.Message.__table__
        insert = sa.insert(table)
        with ext._state.engine().begin() as conn:
            for start in range(0, rows, CHUNK):
                chunk = []
                for _ in range(min(CHUNK, rows - start)):
                    at = now - timedelta(seconds=rng.randrange(span_s))
                    status = rng.choice(STATUSES)
                    chunk.append(
                        {
                            "created_at": at,
                            "updated_at": at,
                            "status": status,
                            "account_id": rng.choice(accounts),
                            "subject": "Weekly news",
                            "sender": "news@example.com",
                            "recipients": '["reader@example.org"]',
                            "error": "connect failed: Connection refused" if status == "failed" else None,
                            "error_stage": "connect" if status == "failed" else None,
                        }
                    )
                conn.execute(insert, chunk)
    return time.perf_counter() - started


def render_times(app: Flask, repeat: int, url: str) -> list[float]:
    client = app.test_client()
    client.get(url)  # warm: templates compiled, pool connected
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, response.status_code
    return times


def query_times(app: Flask, ext: SMTPAccounts) -> dict[str, float]:
    with app.app_context():
        stats = ext.mail_stats
    queries: dict[str, t.Callable[[], object]] = {
        "counts (3 windows)": stats.counts,
        "chart 24 h (the default)": lambda: stats.chart("24h"),
        "chart 30 d": lambda: stats.chart("30d"),
        "last failures": stats.last_failures,
        "oldest queued": stats.oldest_queued,
        "cooling + token refused": lambda: (stats.cooling(), stats.token_refused()),
    }
    found = {}
    with app.app_context():
        for name, run in queries.items():
            started = time.perf_counter()
            run()
            found[name] = time.perf_counter() - started
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--keep", metavar="FOLDER", help="Keep the database in FOLDER, and reuse it when it is there."
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or scratch
        reuse = os.path.exists(os.path.join(folder, "bench.db"))
        app, ext = make_app(folder, fresh=not reuse)
        if reuse:
            print(f"reusing the message log in {folder}")
        else:
            filled = fill(app, ext, args.rows)
            print(
                f"filled {args.rows:,} message log rows in {filled:.1f} s (SQLite, Core executemany, {CHUNK:,} a chunk)"
            )
        for name, seconds in query_times(app, ext).items():
            print(f"  {name:<26} {seconds * 1000:8.1f} ms")
        for url in ("/admin/smtp-accounts/", "/admin/smtp-accounts/?window=30d"):
            times = render_times(app, args.repeat, url)
            print(
                f"{url}: fastest {min(times) * 1000:.0f} ms, median {statistics.median(times) * 1000:.0f} ms"
                f" over {args.repeat} renders (target < 1000 ms)"
            )
        print(f"python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}")


if __name__ == "__main__":
    main()
