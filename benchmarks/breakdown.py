"""Where the sender's CPU goes in the newsletter loop, per letter: the floor, the two commits, the rest.

    python benchmarks/breakdown.py                 # SQLite's own journal (synchronous=FULL)
    python benchmarks/breakdown.py --sqlite-wal    # the README's opt-in: WAL, synchronous=NORMAL
    SMTP_ACCOUNTS_BENCH_DATABASE_URL=postgresql+psycopg://... python benchmarks/breakdown.py   # a server
    python benchmarks/breakdown.py --profile 40    # and a cProfile of one more routed loop

The floor is ``run.py``'s: ``Message.as_bytes()`` and ``smtplib`` ``sendmail``
on one connection, no database. The routed loop is the same letters in one
``mail.connect()`` block. Inside it, the CPU time spent in the message log's
two writes per letter (``MessageLog.insert`` and ``MessageLog.update``, each
its own committed transaction) is read around those two methods. The same
statements, captured from the engine, are then replayed with the ``sqlite3``
module alone (each its own transaction, committed) on a copy of the file:
what SQLite itself costs for the durability promise, with no SQLAlchemy
and none of this package's code (on a server database there is no replay:
the server's own work is not the sender's CPU). The statements, commits and
pool checkouts of the routed loop are counted per letter, as the engine's
event listeners see them. Rounds are interleaved; medians are printed.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import os
import pstats
import smtplib
import sqlite3
import statistics
import sys
import tempfile
import time
import typing as t

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import sqlalchemy as sa  # noqa: E402
from bench_apps import RECIPIENT, SENDER, db, dispose, letter, mail, routed_app  # noqa: E402
from databases import Databases, url_from_environment  # noqa: E402
from sink import start_sink  # noqa: E402

from flask_smtp_accounts.message_log import MessageLog  # noqa: E402


class WriteClock:
    """CPU time spent inside the message log's two writes, summed (the methods are wrapped while it is on)."""

    def __init__(self) -> None:
        self.cpu = 0.0

    def wrap(self, method: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
        def timed(*args: t.Any, **kwargs: t.Any) -> t.Any:
            started = time.process_time()
            try:
                return method(*args, **kwargs)
            finally:
                self.cpu += time.process_time() - started

        return timed


def floor(app: t.Any, host: str, port: int, letters: int) -> float:
    """CPU seconds of the floor for ``letters`` letters."""
    with app.app_context():
        started = time.process_time()
        smtp = smtplib.SMTP(host, port)
        for _ in range(letters):
            message = letter()
            message.date = time.time()
            smtp.sendmail(SENDER[1], [RECIPIENT], message.as_bytes())
        smtp.quit()
        return time.process_time() - started


def routed(app: t.Any, letters: int, clock: WriteClock) -> tuple[float, float]:
    """CPU seconds of the routed loop, and of its message-log writes."""
    clock.cpu = 0.0
    with app.app_context():
        started = time.process_time()
        with mail.connect() as conn:
            for _ in range(letters):
                conn.send(letter())
        return time.process_time() - started, clock.cpu


def replay(path: str, statements: list[tuple[str, t.Any]], wal: bool) -> float:
    """CPU seconds of the captured statements with ``sqlite3`` alone, each committed, on a copy of ``path``."""
    copy = path + ".replay"
    source, conn = sqlite3.connect(path), sqlite3.connect(copy)
    source.backup(conn)  # the rows still in a WAL file too
    source.close()
    try:
        if wal:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        started = time.process_time()
        for sql, parameters in statements:
            conn.execute(sql, parameters)
            conn.commit()
        spent = time.process_time() - started
        conn.close()
        return spent
    finally:
        for suffix in ("", "-wal", "-shm", "-journal"):
            if os.path.exists(copy + suffix):
                os.remove(copy + suffix)


class Counts:
    """Statements, commits, compiled-cache hits and pool checkouts of an engine, as its event listeners see them."""

    def __init__(self, engine: sa.Engine) -> None:
        self.seen: collections.Counter[str] = collections.Counter()
        sa.event.listen(engine, "before_cursor_execute", self._statement)
        sa.event.listen(engine, "commit", lambda conn: self._count("commits"))
        sa.event.listen(engine, "checkout", lambda *args: self._count("pool checkouts"))

    def _count(self, name: str) -> None:
        self.seen[name] += 1

    def _statement(
        self, conn: t.Any, cursor: t.Any, sql: str, parameters: t.Any, context: t.Any, *rest: t.Any
    ) -> None:
        self.seen[" ".join(sql.split()[:3])] += 1
        # CACHE_HIT: Core reused the statement's compiled form; CACHE_MISS: it compiled it afresh.
        self.seen[f"compiled cache: {context.cache_hit.name}"] += 1

    def print_per(self, letters: int) -> None:
        print(f"\nper letter in the routed loop ({letters:,} letters in one block):")
        for name, count in self.seen.most_common():
            print(f"  {count / letters:7.3f}  {name}")


def profile(app: t.Any, letters: int, lines: int) -> None:
    """A cProfile of one more routed loop: the functions with the most time of their own."""
    profiler = cProfile.Profile()
    with app.app_context(), mail.connect() as conn:
        profiler.enable()
        for _ in range(letters):
            conn.send(letter())
        profiler.disable()
    print(f"\ncProfile of {letters:,} routed letters in one block (wall-clock, inflated by the profiler):")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(lines)


def main(argv: t.Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--letters", type=int, default=500, help="letters per repetition (default 500)")
    parser.add_argument(
        "--rounds", type=int, default=5, help="measured rounds (default 5), after one warm-up"
    )
    parser.add_argument("--sink", choices=("auto", "smtp-sink", "aiosmtpd"), default="aiosmtpd")
    parser.add_argument("--sqlite-wal", action="store_true", help="WAL with synchronous=NORMAL (the opt-in)")
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL or MySQL/MariaDB server (default: SMTP_ACCOUNTS_BENCH_DATABASE_URL)",
    )
    parser.add_argument("--profile", type=int, default=0, metavar="LINES", help="print a cProfile too")
    args = parser.parse_args(argv)
    databases = Databases(args.database_url or url_from_environment(), wal=args.sqlite_wal)
    on_sqlite = databases.url is None
    clock = WriteClock()
    MessageLog.insert = clock.wrap(MessageLog.insert)  # type: ignore[method-assign]
    MessageLog.update = clock.wrap(MessageLog.update)  # type: ignore[method-assign]
    samples: dict[str, list[float]] = {"floor": [], "routed": [], "writes": []}
    if on_sqlite:
        samples["sqlite3 alone"] = []
    with (
        tempfile.TemporaryDirectory(prefix="smtp-accounts-breakdown-") as folder,
        start_sink(args.sink) as sink,
    ):
        print(f"sink: {sink.kind}; site database: {databases.describe()}", flush=True)
        app = routed_app(folder, sink.host, sink.port, database=databases.config(folder), save_logs=False)
        path = os.path.join(folder, "bench.sqlite")
        captured: list[tuple[str, t.Any]] = []

        def capture(conn: t.Any, cursor: t.Any, sql: str, parameters: t.Any, *rest: t.Any) -> None:
            if "smtp_accounts_message" in sql:
                captured.append((sql, parameters))

        with app.app_context():
            databases.tune(db.engine)
            if on_sqlite:
                sa.event.listen(db.engine, "before_cursor_execute", capture)
            counts = Counts(db.engine)
        for index in range(1 + args.rounds):
            captured.clear()
            counts.seen.clear()
            values = {"floor": floor(app, sink.host, sink.port, args.letters)}
            values["routed"], values["writes"] = routed(app, args.letters, clock)
            if on_sqlite:
                values["sqlite3 alone"] = replay(path, list(captured), args.sqlite_wal)
            if index:
                for name, value in values.items():
                    samples[name].append(value / args.letters * 1e6)
        counts.print_per(args.letters)
        if args.profile:
            profile(app, args.letters, args.profile)
        dispose(app)
    databases.drop()
    median = {name: statistics.median(values) for name, values in samples.items()}
    spread = {name: (min(values), max(values)) for name, values in samples.items()}
    rest = median["routed"] - median["writes"]
    print(f"\nsender CPU per letter, median of {args.rounds} rounds of {args.letters:,} letters (min-max):")
    for name in samples:
        low, high = spread[name]
        print(f"  {name:<40} {median[name]:8,.0f} us  ({low:,.0f}-{high:,.0f})")
    print(f"  {'routed minus its two writes':<40} {rest:8,.0f} us")
    extra = median["routed"] - median["floor"]
    if on_sqlite:
        writes = (
            f" (SQLite's own statements and commits {median['sqlite3 alone']:,.0f} us,"
            f" SQLAlchemy Core and the log's own code {median['writes'] - median['sqlite3 alone']:,.0f} us)"
        )
    else:
        writes = " (SQLAlchemy Core, the driver and the log's own code; the server's work is not counted)"
    print(
        f"\nrouted / floor {median['routed'] / median['floor']:.2f}; above the floor {extra:,.0f} us a letter:"
        f" the two writes {median['writes']:,.0f} us{writes}, everything else {rest - median['floor']:,.0f} us"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
