"""Scale-out: do Celery workers add up? 1, 2 and 4 worker processes, each with 2 connections.

Every round stores the same letters in the outbox of a fresh database, starts
N ``celery worker`` processes (thread pool, ``--concurrency 2``: two
connections each), hands the row ids to them (``deliver_ids`` tasks of 50),
and times until every row is settled. The server is 10 ms away:
``relay.py`` in front of the sink. The figure is the throughput with N
workers over the throughput with one (target, issue 13: at least 3.2 at 4).
The machine's cores are few, so this measures that workers add up against a
distant server, not that CPUs do.

Then, as a newsletter job runs in production: the workers (``--overlap``
of them, ``--concurrency`` connections each) are up and wired before the
job starts, the job stores the letters with ``outbox(batch=500)``, and each
group goes to the workers as it is committed, so they deliver while the
job stores the rest. Timed from the first ``mail.send`` to the last row
settled, against the floor of issue 13 (letters x 2 round trips / the
connections). Prints the figures; asserts nothing::

    python benchmarks/celery_scaleout.py [--letters 2000] [--workers 1,2,4] [--rounds 1] [--overlap 4]
    SMTP_ACCOUNTS_BENCH_DATABASE_URL=postgresql+psycopg://user:password@127.0.0.1/db \\
        python benchmarks/celery_scaleout.py

SQLite is allowed but shows its one writer, not the workers: use a database server.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import pathlib
import statistics
import sys
import tempfile
import time
import typing as t

import sqlalchemy as sa
from bench_apps import db, dispose, letter, mail, routed_app, set_logs, smtp_accounts
from bulk import ROUND_TRIPS, STORE_BATCH
from celery import Celery
from celery_worker_app import SPEC_VARIABLE
from databases import Databases, url_from_environment
from relay import DEFAULT_DELAY_MS, start_relay
from sink import start_sink

from flask_smtp_accounts.celery_tasks import init_celery
from flask_smtp_accounts.testing.workers import CeleryWorker, RedisServer, wait_until

HERE = pathlib.Path(__file__).resolve().parent
#: Longest a round may take before the benchmark gives up on it.
ROUND_DEADLINE_S = 1800


def parse_args(argv: t.Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--letters", type=int, default=2000)
    parser.add_argument("--workers", default="1,2,4", help="worker process counts, comma-separated")
    parser.add_argument("--concurrency", type=int, default=2, help="connections (threads) a worker")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of every count; medians are shown")
    parser.add_argument("--delay-ms", type=float, default=DEFAULT_DELAY_MS, help="one-way delay of the relay")
    parser.add_argument("--sink", default="auto", choices=("auto", "smtp-sink", "aiosmtpd"))
    parser.add_argument("--database-url", default=url_from_environment())
    parser.add_argument(
        "--overlap",
        type=int,
        default=4,
        help="workers for the newsletter job stored while they deliver (0: skip that part)",
    )
    return parser.parse_args(argv)


def waiting(app: t.Any) -> int:
    """Rows not settled yet: queued, claimed or being sent."""
    with app.app_context():
        with db.engine.connect() as conn:
            return int(
                conn.scalar(
                    sa.text(
                        "SELECT count(*) FROM smtp_accounts_message"
                        " WHERE status IN ('queued', 'claimed', 'sending')"
                    )
                )
            )


@dataclasses.dataclass
class _Site:
    """A round's site: its app on a fresh database, its worker processes (ready), a Celery app to wire it with."""

    app: t.Any
    workers: list[CeleryWorker]
    celery: Celery
    folder: str

    def settle(self, what: str) -> None:
        """Until no row is queued, claimed or being sent; a letter that failed stops the benchmark."""
        wait_until(
            lambda: waiting(self.app) == 0,
            f"{len(self.workers)} workers delivering {what}",
            ROUND_DEADLINE_S,
            lambda: "\n".join(w.output() for w in self.workers),
        )
        with self.app.app_context():
            failed = smtp_accounts.messages(status="failed").total
        if failed:
            raise SystemExit(
                f"{failed} letters failed with {len(self.workers)} workers; see the workers' logs in {self.folder}"
            )


@contextlib.contextmanager
def _site(
    args: argparse.Namespace, workers: int, relay_port: int, redis: RedisServer, work: str, name: str
) -> t.Iterator[_Site]:
    """A fresh site and ``workers`` worker processes (thread pool, ``--concurrency`` connections each), ready."""
    folder = tempfile.mkdtemp(prefix=f"{name}_", dir=work)
    databases = Databases(args.database_url)
    database = databases.config(folder)
    app = routed_app(folder, "127.0.0.1", relay_port, database=database)
    set_logs(app, None)
    spec = {"folder": folder, "database": database, "relay_port": relay_port, "broker": redis.url}
    started = [
        CeleryWorker(
            "celery_worker_app",
            f"bench{n}",
            pool="threads",
            concurrency=args.concurrency,
            logdir=pathlib.Path(folder),
            path=[HERE, HERE.parent],
            env={SPEC_VARIABLE: json.dumps(spec)},
        )
        for n in range(workers)
    ]
    celery = Celery("bench", broker=redis.url)
    try:
        for worker in started:
            worker.wait_ready()
        yield _Site(app, started, celery, folder)
    finally:
        for worker in started:
            worker.stop()
        celery.close()
        dispose(app)
        databases.drop()


def one_round(
    args: argparse.Namespace, workers: int, relay_port: int, redis: RedisServer, work: str
) -> float:
    """Letters a second that ``workers`` worker processes deliver."""
    with _site(args, workers, relay_port, redis, work, f"w{workers}") as site:
        with site.app.app_context():
            with smtp_accounts.outbox():
                for _ in range(args.letters):
                    mail.send(letter())
            # Wired after the letters are stored, so that the clock starts when the ids go out.
            tasks = init_celery(site.celery, smtp_accounts, app=site.app)
            begin = time.monotonic()
            tasks.hand_out(smtp_accounts.queued_ids(args.letters))
        site.settle(f"{args.letters} letters")
        return args.letters / (time.monotonic() - begin)


def overlap_round(
    args: argparse.Namespace, relay_port: int, redis: RedisServer, work: str
) -> tuple[float, float]:
    """The newsletter job with ``--overlap`` workers up: (seconds to store, seconds until every row settled)."""
    with _site(args, args.overlap, relay_port, redis, work, "overlap") as site:
        with site.app.app_context():
            init_celery(site.celery, smtp_accounts, app=site.app)
            begin = time.monotonic()
            with smtp_accounts.outbox(batch=STORE_BATCH):
                for _ in range(args.letters):
                    mail.send(letter())
            stored = time.monotonic() - begin
        site.settle(f"{args.letters} letters stored in batches")
        return stored, time.monotonic() - begin


def main(argv: t.Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    counts = [int(n) for n in args.workers.split(",")]
    with tempfile.TemporaryDirectory(prefix="celery-scaleout-") as work:
        redis = RedisServer(pathlib.Path(work))
        sink = start_sink(args.sink)
        relay = start_relay(sink.port, args.delay_ms)
        try:
            print(
                f"{args.letters} letters, workers {counts} x {args.concurrency} connections, server"
                f" {2 * args.delay_ms:g} ms away ({relay.kind} -> {sink.kind}),"
                f" {Databases(args.database_url).describe()}, {args.rounds} round(s)",
                flush=True,
            )
            rates: dict[int, list[float]] = {n: [] for n in counts}
            overlaps: list[tuple[float, float]] = []
            for round_number in range(args.rounds):
                for n in counts if round_number % 2 == 0 else reversed(counts):
                    rates[n].append(one_round(args, n, relay.port, redis, work))
                    print(
                        f"  round {round_number + 1}: {n} worker(s): {rates[n][-1]:.1f} letters/s", flush=True
                    )
                if args.overlap:
                    overlaps.append(overlap_round(args, relay.port, redis, work))
                    print(
                        f"  round {round_number + 1}: stored while {args.overlap} worker(s) deliver:"
                        f" stored in {overlaps[-1][0]:.2f} s, all settled in {overlaps[-1][1]:.2f} s",
                        flush=True,
                    )
        finally:
            relay.stop()
            sink.stop()
            redis.stop()
    base = statistics.median(rates[counts[0]])
    print(f"\n| workers | connections | letters/s (median) | vs {counts[0]} worker(s) |")
    print("|---|---|---|---|")
    for n in counts:
        rate = statistics.median(rates[n])
        print(f"| {n} | {n * args.concurrency} | {rate:.1f} | {rate / base:.2f}x |")
    if 4 in rates and counts[0] == 1:
        print(
            f"\ntarget (issue 13): at least 3.2x at 4 workers; measured {statistics.median(rates[4]) / base:.2f}x"
        )
    if overlaps:
        connections = args.overlap * args.concurrency
        floor = args.letters * ROUND_TRIPS * (2 * args.delay_ms / 1000) / connections
        totals = [total for _, total in overlaps]
        print(
            f"\nnewsletter job, outbox(batch={STORE_BATCH}), {args.overlap} worker(s) x {args.concurrency}"
            f" connections up before it: stored in {statistics.median(s for s, _ in overlaps):.2f} s,"
            f" every letter settled {statistics.median(totals):.2f} s after the first mail.send"
            f" (rounds: {', '.join(f'{x:.2f}' for x in totals)});"
            f" floor (letters x 2 round trips / {connections} connections) {floor:.2f} s:"
            f" {statistics.median(totals) / floor:.2f}x the floor (issue 13's target: at most 1.5x)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
