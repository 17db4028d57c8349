"""What routing costs: flask-smtp-accounts side by side with Flask-Mail and raw smtplib.

    python benchmarks/run.py                # the full run, a few minutes
    python benchmarks/run.py --only relay   # one part
    python benchmarks/run.py --quick        # a smoke run with tiny counts (figures mean nothing)

Starts a local SMTP sink in its own process (and, for the relayed letter, a
sink with STARTTLS and AUTH behind a latency relay, each in a process of its
own), measures with interleaved repetitions, prints a table of figures and
of ratios next to their targets, and writes the same to
``benchmarks/results/`` as JSON. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
import typing as t
import warnings
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import bulk  # noqa: E402
import report  # noqa: E402
import scenarios  # noqa: E402
from databases import URL_VARIABLES, Databases, url_from_environment  # noqa: E402
from relay import DEFAULT_DELAY_MS  # noqa: E402
from sink import start_sink  # noqa: E402

PARTS = ("relay", "single", "newsletter", "choose", "logs", "memory", "pipelining", "outbox")


@dataclass(frozen=True)
class Counts:
    """How much each part measures."""

    rounds: int = 9
    warmup: int = 1
    relayed: int = 10
    single: int = 200
    loop: int = 2000
    accounts: tuple[int, ...] = (10, 1_000, 100_000)
    calls: int = 2000
    memory: int = 20_000
    pipelined: int = 100
    bulk: int = 2000
    #: Rounds of the outbox part, no warm-up: each round sends the newsletter five ways, minutes through the relay.
    bulk_rounds: int = 3


FULL = Counts()
QUICK = Counts(
    rounds=2,
    warmup=1,
    relayed=1,
    single=3,
    loop=20,
    accounts=(10, 100, 1_000),
    calls=20,
    memory=200,
    pipelined=3,
    bulk=8,
    bulk_rounds=2,
)


def parse_args(argv: t.Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="tiny counts: proves the script works, measures nothing"
    )
    parser.add_argument("--rounds", type=int, help="measured rounds per comparison (after the warm-up)")
    parser.add_argument("--warmup", type=int, help="warm-up rounds, not counted")
    parser.add_argument("--letters", type=int, help="letters in the newsletter loop (default 2,000)")
    parser.add_argument("--relayed", type=int, help="letters through the relay per repetition (default 10)")
    parser.add_argument(
        "--delay-ms",
        type=float,
        default=DEFAULT_DELAY_MS,
        help=f"the relay's one-way delay, each direction (default {DEFAULT_DELAY_MS:g})",
    )
    parser.add_argument("--single", type=int, help="single letters on loopback per repetition (default 200)")
    parser.add_argument(
        "--accounts", help="comma-separated table sizes for choose_account (default 10,1000,100000)"
    )
    parser.add_argument("--calls", type=int, help="choose_account calls per repetition (default 2,000)")
    parser.add_argument(
        "--memory-letters", type=int, help="letters routed for the memory figure (default 20,000)"
    )
    parser.add_argument(
        "--pipelined",
        type=int,
        help="letters on one connection through the relay, pipelining on and off (default 100)",
    )
    parser.add_argument(
        "--bulk-letters", type=int, help="letters to one account in the outbox part (default 2,000)"
    )
    parser.add_argument(
        "--bulk-rounds", type=int, help="rounds of the outbox part, no warm-up (default 3; --quick: 2)"
    )
    parser.add_argument(
        "--profile-drain",
        metavar="PATH",
        help="outbox part: also drain once under cProfile (every drainer thread) and write the stats to PATH",
    )
    parser.add_argument("--only", help=f"comma-separated parts to run: {','.join(PARTS)}")
    parser.add_argument(
        "--sink",
        choices=("auto", "smtp-sink", "aiosmtpd"),
        default="auto",
        help="which sink (auto: Postfix's smtp-sink when installed, else aiosmtpd)",
    )
    parser.add_argument(
        "--database-url",
        help="PostgreSQL or MySQL/MariaDB URL for the routed apps' tables (default: "
        + " or ".join(f"${name}" for name in URL_VARIABLES)
        + ", else SQLite files)",
    )
    parser.add_argument(
        "--sqlite-wal",
        action="store_true",
        help="SQLite files in WAL mode with synchronous=NORMAL (the README's opt-in; default: SQLite's own journal)",
    )
    parser.add_argument(
        "--out",
        help="JSON file to write (default benchmarks/results/<time>.json and latest.json;"
        " quick.json for --quick)",
    )
    return parser.parse_args(argv)


def _revision() -> str:
    """The commit measured, and whether the tree had uncommitted changes (others edit it too)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "flask_smtp_accounts"],
            cwd=os.path.dirname(HERE),
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}{' + uncommitted changes in flask_smtp_accounts/' if dirty else ''}"


def main(argv: t.Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    given = {
        "rounds": args.rounds,
        "warmup": args.warmup,
        "loop": args.letters,
        "single": args.single,
        "relayed": args.relayed,
        "calls": args.calls,
        "memory": args.memory_letters,
        "pipelined": args.pipelined,
        "bulk": args.bulk_letters,
        "bulk_rounds": args.bulk_rounds,
        "accounts": tuple(int(n) for n in args.accounts.split(",")) if args.accounts else None,
    }
    counts = replace(QUICK if args.quick else FULL, **{k: v for k, v in given.items() if v is not None})
    parts = args.only.split(",") if args.only else list(PARTS)
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise SystemExit(f"unknown part(s): {', '.join(sorted(unknown))}; choose from {', '.join(PARTS)}")
    # The package's own warnings would be bugs; show them, don't let them pass silently.
    warnings.simplefilter("default")

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="smtp-accounts-bench-") as folder, start_sink(args.sink) as sink:
        print(f"sink: {sink.kind} on {sink.host}:{sink.port}, pid {sink.process.pid}", flush=True)
        databases = Databases(args.database_url or url_from_environment(), wal=args.sqlite_wal)
        print(f"site database: {databases.describe()}", flush=True)
        setup = scenarios.Setup(
            sink.host, sink.port, folder, counts.rounds, counts.warmup, databases, delay_ms=args.delay_ms
        )
        runs: dict[str, t.Callable[[], scenarios.Section]] = {
            "relay": lambda: scenarios.relayed_letter(setup, counts.relayed),
            "single": lambda: scenarios.single_letters(setup, counts.single),
            "newsletter": lambda: scenarios.newsletter(setup, counts.loop),
            "choose": lambda: scenarios.choosing(setup, list(counts.accounts), counts.calls),
            "logs": lambda: scenarios.logs(setup, counts.loop),
            "memory": lambda: scenarios.memory(setup, counts.memory),
            "pipelining": lambda: scenarios.pipelining(setup, counts.pipelined),
            "outbox": lambda: bulk.bulk(setup, counts.bulk, counts.bulk_rounds, args.profile_drain),
        }
        sections = []
        try:
            for part in parts:
                part_started = time.perf_counter()
                print(f"measuring {part}...", flush=True)
                sections.append(runs[part]())
                print(f"  done in {time.perf_counter() - part_started:.0f} s", flush=True)
        finally:
            setup.close()
        meta = {
            "sink": sink.kind,
            "sink_address": f"{sink.host}:{sink.port}",
            "database": databases.describe(),
            "relay_delay_ms_each_way": args.delay_ms,
            "code": _revision(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "quick": args.quick,
            "parts": parts,
            "rounds": counts.rounds,
            "warmup": counts.warmup,
            "counts": asdict(counts),
            "interleaved": "every round runs each variant once, order rotating; ratios are per round",
            "started_utc": datetime.now(UTC).isoformat(timespec="seconds"),
            "seconds": round(time.perf_counter() - started, 1),
        }

    print()
    print(report.table(meta, sections))
    data = report.as_json(meta, sections)
    if args.out:
        paths = [args.out]
    else:
        results = os.path.join(HERE, "results")
        os.makedirs(results, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        if args.quick:
            paths = [os.path.join(results, "quick.json")]
        else:
            paths = [os.path.join(results, f"{stamp}.json"), os.path.join(results, "latest.json")]
    for path in paths:
        report.write_json(path, data)
    print(f"\nJSON written to {', '.join(paths)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
