"""Part "outbox": a newsletter to one account through a relay 10 ms away, Flask-Mail's loop against the outbox.

Five ways to send the same letters, interleaved round by round: Flask-Mail's
loop (``with mail.connect(): for m in msgs: conn.send(m)``) routed and plain;
the outbox (``with smtp_accounts.outbox(): ...`` to store, then
``deliver_queued(connections=8)`` to drain) with the account's PIPELINING on
and off, and on with the rows stored in batches (``outbox(batch=500)``); and
the floor, bare smtplib threads that pipeline by hand. The floor
is also computed: with PIPELINING a letter costs two round trips (MAIL, RCPT
and DATA in one write, then the data and its end), spread over the
connections. The drain goes below that: it writes each letter's data with
the next letter's envelope, so after the first letter on a connection a
letter costs one round trip. The targets are computed on the outbox as a
newsletter job uses it, the rows stored in batches; the same with one
commit a stored letter is reported beside them. After the rounds, one more
drain is timed call by call to say where the drainer threads spend their time.
"""

from __future__ import annotations

import cProfile
import functools
import io
import pstats
import smtplib
import threading
import time
import typing as t

import sqlalchemy as sa
from bench_apps import RECIPIENT, SENDER, db, genuine_flask_mail, letter, mail, plain_app, smtp_accounts
from flask import Flask
from measure import Clock, Stats, Timing, interleaved, paired_ratios, walls
from relay import start_relay
from scenarios import Section, Setup, Target, check_routed, routed_pipelining

from flask_smtp_accounts import SMTPAccountsError, delivery, outbox
from flask_smtp_accounts.message_log import MessageLog

#: Connections the drain and the floor use.
CONNECTIONS = 8
#: Round trips a pipelined letter costs: MAIL+RCPT+DATA, then the data and its end.
ROUND_TRIPS = 2
#: Rows a transaction of the batched store: ``outbox(batch=STORE_BATCH)``.
STORE_BATCH = 500

OUTBOX_ON = "outbox, pipelining on"
OUTBOX_OFF = "outbox, pipelining off"
OUTBOX_BATCHED = f"outbox, stored in batches of {STORE_BATCH}"


def _loop(app: Flask, letters: int) -> Timing:
    with app.app_context(), Clock() as clock:
        with mail.connect() as conn:
            for _ in range(letters):
                conn.send(letter())
    return clock.timing()


def _clear_log(app: Flask) -> None:
    """Delete the message log's rows, so that every repetition starts from an empty outbox."""
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(sa.delete(db.metadata.tables["smtp_accounts_message"]))


def _through_outbox(app: Flask, letters: int, phases: list[tuple[float, float]], batch: int = 1) -> Timing:
    """Store ``letters`` in the outbox (``batch`` rows a transaction), then drain it over :data:`CONNECTIONS`
    connections; both timed."""
    _clear_log(app)
    with app.app_context():
        with Clock() as store:
            with smtp_accounts.outbox(batch=batch), mail.connect() as conn:
                for _ in range(letters):
                    conn.send(letter())
        with Clock() as drain:
            try:
                report = smtp_accounts.deliver_queued(connections=CONNECTIONS)
            except SMTPAccountsError as error:
                raise SystemExit(f"deliver_queued(connections={CONNECTIONS}) failed: {error}") from error
    if report.sent != letters or report.left:
        raise SystemExit(f"the outbox did not deliver every letter: {report}")
    phases.append((store.wall, drain.wall))
    return Timing(store.wall + drain.wall, store.cpu + drain.cpu)


def _pipelined_letters(host: str, port: int, data: bytes, letters: int) -> None:
    """One connection sending ``letters`` letters, MAIL, RCPT and DATA in one write (smtplib has no PIPELINING)."""
    head = f"MAIL FROM:<{SENDER[1]}>\r\nRCPT TO:<{RECIPIENT}>\r\nDATA\r\n".encode()
    smtp = smtplib.SMTP(host, port, timeout=30)
    smtp.ehlo()
    if not smtp.has_extn("pipelining"):
        raise SystemExit("the sink does not offer PIPELINING")
    for _ in range(letters):
        smtp.send(head)
        codes = [smtp.getreply()[0] for _ in range(3)]
        smtp.send(data)
        codes.append(smtp.getreply()[0])
        if codes != [250, 250, 354, 250]:
            raise SystemExit(f"the sink answered {codes} to a pipelined letter")
    smtp.quit()


def _floor(app: Flask, host: str, port: int, letters: int) -> Timing:
    """Bare smtplib threads, one connection each, the letters shared among them."""
    with app.app_context():
        data = (smtplib.quotedata(letter().as_string()) + "\r\n.\r\n").encode()
    shares = [letters // CONNECTIONS + (n < letters % CONNECTIONS) for n in range(CONNECTIONS)]
    errors: list[BaseException] = []

    def send(share: int) -> None:
        try:
            _pipelined_letters(host, port, data, share)
        except BaseException as error:  # noqa: BLE001 - raised below, in the measuring thread
            errors.append(error)

    threads = [threading.Thread(target=send, args=(share,)) for share in shares if share]
    with Clock() as clock:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
    return clock.timing()


# --- where the drain's time goes -------------------------------------------------------

#: What the timed drain measures, call by call: (label, owner, attribute).
_STEPS: tuple[tuple[str, t.Any, str], ...] = (
    ("claim a batch (queued -> claimed)", MessageLog, "claim"),
    ("write-ahead (claimed -> sending, row read)", MessageLog, "begin_sending"),
    ("settle (sending -> sent)", MessageLog, "settle"),
    ("pick an account (due letters per account)", MessageLog, "due_accounts"),
    ("SMTP transaction (MAIL, RCPT, DATA, data; the settle runs inside it)", delivery, "send_transaction"),
    ("open or reuse a connection", delivery.Dispatcher, "_connection"),
)


class _StepClock:
    """Sums the wall-clock time the drainer threads spend in each of :data:`_STEPS`, while active."""

    def __init__(self) -> None:
        self.spent = {label: 0.0 for label, _, _ in _STEPS}
        self.calls = dict.fromkeys(self.spent, 0)
        self._lock = threading.Lock()
        self._saved: list[tuple[t.Any, str, t.Any]] = []

    def _timed(self, label: str, function: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
        @functools.wraps(function)
        def timed(*args: t.Any, **kwargs: t.Any) -> t.Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                with self._lock:
                    self.spent[label] += time.perf_counter() - started
                    self.calls[label] += 1

        return timed

    def __enter__(self) -> _StepClock:
        for label, owner, name in _STEPS:
            original = getattr(owner, name)
            self._saved.append((owner, name, original))
            setattr(owner, name, self._timed(label, original))
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, name, original in reversed(self._saved):
            setattr(owner, name, original)
        self._saved.clear()


class _ThreadProfiles:
    """cProfile of every drainer thread (each thread's work under a profiler of its own), merged."""

    def __init__(self) -> None:
        self.profiles: list[cProfile.Profile] = []
        self._original = outbox._Drain._work

    def __enter__(self) -> _ThreadProfiles:
        original, profiles = self._original, self.profiles

        def profiled(drain: t.Any) -> None:
            profile = cProfile.Profile()
            profiles.append(profile)
            profile.runcall(original, drain)

        outbox._Drain._work = profiled  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        outbox._Drain._work = self._original  # type: ignore[method-assign]

    def top(self, count: int) -> str:
        stream = io.StringIO()
        stats = pstats.Stats(*self.profiles, stream=stream)  # type: ignore[arg-type]
        stats.sort_stats("cumulative").print_stats(count)
        return stream.getvalue()


def _where_the_drain_goes(app: Flask, letters: int, section: Section, profile: str | None) -> None:
    """One more store and drain, untimed in the figures, with every drainer step on a clock."""
    phases: list[tuple[float, float]] = []
    with _StepClock() as steps:
        _through_outbox(app, letters, phases)
    drain_s = phases[0][1]
    threads_s = drain_s * CONNECTIONS
    section.extra["drain timed step by step (s), drainer threads' time = drain x connections"] = round(
        threads_s, 2
    )
    for label, spent in steps.spent.items():
        calls = steps.calls[label]
        per = spent / calls * 1000 if calls else 0.0
        section.extra[f"  {label}"] = (
            f"{spent:.2f} s, {spent / threads_s:.0%} of the threads' time, {calls:,} calls, {per:.2f} ms each"
        )
    if profile:
        with _ThreadProfiles() as profiles:
            _through_outbox(app, letters, [])
        merged = pstats.Stats(*profiles.profiles)  # type: ignore[arg-type]
        merged.dump_stats(profile)
        section.notes.append(f"cProfile of the drainer threads written to {profile} (pstats format)")
        print(profiles.top(30), flush=True)


def bulk(setup: Setup, letters: int, rounds: int, profile: str | None = None) -> Section:
    """``letters`` letters to one account through a relay :attr:`Setup.delay_ms` each way, ``rounds`` rounds, no warm-up.

    ``profile``: a path for the cProfile of one more drain's threads.
    """
    round_trip_ms = 2 * setup.delay_ms
    with start_relay(setup.port, setup.delay_ms) as relay:
        plain = plain_app(setup.path("bulk_plain"), relay.host, relay.port)
        routed = setup.routed("bulk_routed", relay.host, relay.port, save_logs=False)
        drained = routed_pipelining(setup, "bulk_outbox", relay.host, relay.port)
        for app in (routed, *drained.values()):
            check_routed(app)
        phases: dict[str, list[tuple[float, float]]] = {OUTBOX_ON: [], OUTBOX_OFF: [], OUTBOX_BATCHED: []}

        def flask_mail_alone() -> Timing:
            with genuine_flask_mail():
                return _loop(plain, letters)

        timings = interleaved(
            {
                "Flask-Mail loop, routed": lambda: _loop(routed, letters),
                "Flask-Mail loop, plain": flask_mail_alone,
                OUTBOX_ON: lambda: _through_outbox(drained[True], letters, phases[OUTBOX_ON]),
                OUTBOX_OFF: lambda: _through_outbox(drained[False], letters, phases[OUTBOX_OFF]),
                OUTBOX_BATCHED: lambda: _through_outbox(
                    drained[True], letters, phases[OUTBOX_BATCHED], STORE_BATCH
                ),
                "floor (smtplib threads)": lambda: _floor(plain, relay.host, relay.port, letters),
            },
            rounds=rounds,
            warmup=0,
        )
        section = Section(
            f"8. bulk through the outbox: {letters:,} letters to one account through a relay"
            f" {setup.delay_ms:g} ms each way (one round trip: {round_trip_ms:g} ms);"
            f" outbox = store + deliver_queued(connections={CONNECTIONS})"
        )
        _where_the_drain_goes(drained[True], letters, section, profile)
    wall = walls(timings)
    for name, measured in phases.items():
        wall[f"{name}: store"] = [store for store, _ in measured]
        wall[f"{name}: drain"] = [drain for _, drain in measured]
    section.figures = {name: Stats.of(values, "s") for name, values in wall.items()}
    floor_s = letters * ROUND_TRIPS * round_trip_ms / 1000 / CONNECTIONS
    wall["floor (computed)"] = [floor_s] * rounds
    section.extra["floor (computed): letters x 2 round trips / connections (s)"] = floor_s
    section.notes += [
        "the routed loop and the outbox's account offer PIPELINING (the account's default), so the routed"
        " loop costs 2 round trips a letter, plain Flask-Mail (smtplib) 4",
        "the floor threads pipeline by hand: MAIL, RCPT, DATA in one write, then the data",
        "the drain writes each letter's data with the next letter's envelope: one round trip a letter after"
        " the first on a connection",
        f"targets: the outbox as a newsletter job uses it, outbox(batch={STORE_BATCH}) then the drain;"
        " 'outbox, pipelining on' is the same with one commit a stored letter",
        "the 10x target is against Flask-Mail's own loop (4 round trips a letter), the 'today' issue 13"
        " starts from: the routed loop pipelines (2 round trips a letter), and a tenth of its least possible"
        " time is under the floor",
    ]
    outbox_on = OUTBOX_ON
    one_trip_s = letters * round_trip_ms / 1000 / CONNECTIONS
    wall["one round trip a letter (computed)"] = [one_trip_s] * rounds
    section.targets += [
        Target.ratio(
            "bulk: Flask-Mail loop (plain) / outbox",
            paired_ratios(wall, "Flask-Mail loop, plain", OUTBOX_BATCHED),
            10.0,
            f"Flask-Mail's loop as shipped, 4 round trips a letter (issue 13's 'today');"
            f" outbox = outbox(batch={STORE_BATCH}) store + drain; target: at least 10x faster",
            comparison=">=",
        ),
        Target.ratio(
            "bulk: outbox / floor (computed)",
            paired_ratios(wall, OUTBOX_BATCHED, "floor (computed)"),
            1.5,
            f"outbox = outbox(batch={STORE_BATCH}) store + drain; floor = letters x 2 round trips"
            f" / {CONNECTIONS} connections",
        ),
    ]
    section.info += [
        Target.ratio(
            "bulk: Flask-Mail loop (routed) / outbox",
            paired_ratios(wall, "Flask-Mail loop, routed", OUTBOX_BATCHED),
            float("inf"),
            "the loop through this extension, which pipelines: on one connection at 2 round trips a letter,"
            f" a tenth of its least possible time is under the floor; the outbox stored in batches of {STORE_BATCH}",
        ),
        Target.ratio(
            "bulk: drain alone / one round trip a letter (computed)",
            paired_ratios(wall, f"{OUTBOX_BATCHED}: drain", "one round trip a letter (computed)"),
            float("inf"),
            f"deliver_queued alone against letters x 1 round trip / {CONNECTIONS} connections",
        ),
        Target.ratio(
            "bulk: Flask-Mail loop (routed) / outbox, a commit a letter",
            paired_ratios(wall, "Flask-Mail loop, routed", outbox_on),
            float("inf"),
            "outbox() with its default batch=1: each stored letter committed before mail.send returns",
        ),
        Target.ratio(
            "bulk: outbox, a commit a letter / floor (computed)",
            paired_ratios(wall, outbox_on, "floor (computed)"),
            float("inf"),
            f"store one by one + drain; floor = letters x 2 round trips / {CONNECTIONS} connections",
        ),
        Target.ratio(
            "bulk: outbox drain alone / floor (computed)",
            paired_ratios(wall, f"{outbox_on}: drain", "floor (computed)"),
            float("inf"),
            "deliver_queued alone, what a worker spends",
        ),
        Target.ratio(
            "bulk: outbox / floor (smtplib threads)",
            paired_ratios(wall, outbox_on, "floor (smtplib threads)"),
            float("inf"),
            "the floor measured: bare threads on the same relay",
        ),
        Target.ratio(
            "bulk: outbox, pipelining on / off",
            paired_ratios(wall, outbox_on, OUTBOX_OFF),
            float("inf"),
            "store + drain; off: 4 round trips a letter",
        ),
    ]
    for name in ("Flask-Mail loop, routed", "Flask-Mail loop, plain", outbox_on, OUTBOX_OFF, OUTBOX_BATCHED):
        section.extra[f"{name}: letters a second, median"] = round(letters / section.figures[name].median, 1)
    return section
