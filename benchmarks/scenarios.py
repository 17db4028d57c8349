"""The measurements: a single letter through a relay 10 ms away, single
letters and the newsletter loop on loopback, choosing an account, the logs,
memory, and PIPELINING on and off through the relay. Each returns a :class:`Section` of figures and of ratios next to
their targets.
"""

from __future__ import annotations

import functools
import gc
import os
import random
import secrets
import smtplib
import ssl
import time
import tracemalloc
import typing as t
from dataclasses import dataclass, field
from pathlib import Path

from bench_apps import (
    RECIPIENT,
    SENDER,
    db,
    dispose,
    fill_accounts,
    genuine_flask_mail,
    letter,
    mail,
    plain_app,
    routed_app,
    smtp_accounts,
)
from databases import Databases
from flask import Flask
from measure import Clock, Stats, Timing, cpus, interleaved, paired_ratios, rss_bytes, walls
from relay import start_relay
from sink import start_secure_sink

from flask_smtp_accounts import message_sent
from flask_smtp_accounts.connection import close_quietly, open_connection
from flask_smtp_accounts.models import AccountInfo
from flask_smtp_accounts.routing import RULE_LARGEST_ID
from flask_smtp_accounts.testing import make_certs
from flask_smtp_accounts.transaction import send_transaction

MB = 1024 * 1024


@dataclass(frozen=True)
class Setup:
    """Where to send, where to keep files, and how many repetitions."""

    host: str
    port: int
    folder: str
    rounds: int
    warmup: int
    databases: Databases
    #: One-way delay of the relay, in milliseconds.
    delay_ms: float = 5.0
    routed_apps: list[Flask] = field(default_factory=list)

    def path(self, name: str) -> str:
        return os.path.join(self.folder, name)

    def routed(self, name: str, host: str | None = None, port: int | None = None, **options: t.Any) -> Flask:
        """A routed app in folder ``name`` with a database of its own (see :func:`bench_apps.routed_app`)."""
        folder = self.path(name)
        app = routed_app(
            folder, host or self.host, port or self.port, database=self.databases.config(folder), **options
        )
        with app.app_context():
            self.databases.tune(db.engine)
        self.routed_apps.append(app)
        return app

    def close(self) -> None:
        """Give back the apps' connections and drop their databases."""
        for app in self.routed_apps:
            dispose(app)
        self.routed_apps.clear()
        self.databases.drop()


@dataclass
class Target:
    """A figure next to its target: ``value`` must be at most (``<=``), under (``<``) or at least (``>=``) ``limit``."""

    label: str
    value: float
    low: float
    high: float
    limit: float
    comparison: str
    unit: str
    about: str

    @property
    def passed(self) -> bool:
        if self.comparison == ">=":
            return self.value >= self.limit
        return self.value <= self.limit if self.comparison == "<=" else self.value < self.limit

    @classmethod
    def ratio(
        cls, label: str, ratios: list[float], limit: float, about: str, *, comparison: str = "<="
    ) -> Target:
        ordered = sorted(ratios)
        return cls(label, _median(ordered), ordered[0], ordered[-1], limit, comparison, "x", about)


@dataclass
class Section:
    title: str
    figures: dict[str, Stats] = field(default_factory=dict)
    #: CPU time of the sending process for the same repetitions, where it tells something.
    cpu: dict[str, Stats] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)
    info: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, t.Any] = field(default_factory=dict)


def _median(ordered: list[float]) -> float:
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _note_background_writes(section: Section, timings: t.Mapping[str, list[Timing]]) -> None:
    for name, values in timings.items():
        waits = sorted(v.after for v in values)
        if waits and waits[-1] > 0:
            section.extra[f"{name}: of which waiting for background writes at the end, median (ms)"] = round(
                _median(waits), 2
            )


def wait_for_background_writes(app: Flask) -> float:
    """Wait until the extension's background writes (message log rows), if it has any, are done; ms waited.

    Timed repetitions call it inside their clock: a letter is not done
    until its row is written, and otherwise a variant's leftover writes
    would run during the next variant's repetition and be counted against it.
    """
    writer = getattr(app.extensions.get("smtp_accounts"), "writer", None)
    if writer is None:
        return 0.0
    started = time.perf_counter()
    writer.drain()
    return (time.perf_counter() - started) * 1000


def check_routed(app: Flask) -> None:
    """Refuse to measure unless the routed app really sends through its account."""
    seen: list[t.Any] = []

    def record(sender: Flask, **kwargs: t.Any) -> None:
        seen.append(kwargs)

    with app.app_context(), message_sent.connected_to(record, sender=app):
        mail.send(letter())
    wait_for_background_writes(app)
    if not seen or seen[0]["account"] is None or seen[0]["rule"] != RULE_LARGEST_ID:
        raise SystemExit(f"the routed app did not route through its account: {seen!r}")


# --- 1. a single letter through a relay 10 ms away -------------------------------

#: The login the relayed sink requires; its password is made afresh for every run.
RELAY_LOGIN = "bench@example.com"


def _floor_secure(app: Flask, login: str, password: str, ca_file: str, letters: int) -> Timing:
    """What any correct sender pays: connect, STARTTLS (verified), AUTH, one letter, QUIT; with smtplib."""
    context = ssl.create_default_context(cafile=ca_file)
    host, port = app.config["MAIL_SERVER"], app.config["MAIL_PORT"]
    with app.app_context(), Clock() as clock:
        for _ in range(letters):
            message = letter()
            message.date = time.time()
            smtp = smtplib.SMTP(host, port, timeout=30)
            smtp.starttls(context=context)
            smtp.login(login, password)
            smtp.sendmail(SENDER[1], [RECIPIENT], message.as_bytes())
            smtp.quit()
    return clock.timing(per=letters, scale=1000)


def relayed_letter(setup: Setup, letters: int) -> Section:
    """``mail.send`` of one letter with STARTTLS and AUTH, to a server :attr:`Setup.delay_ms` each way."""
    certs = make_certs(Path(setup.path("certs")))
    password = secrets.token_urlsafe(16)
    with (
        start_secure_sink(str(certs.server_cert), str(certs.server_key), RELAY_LOGIN, password) as sink,
        start_relay(sink.port, setup.delay_ms) as relay,
    ):
        plain = plain_app(
            setup.path("relay_plain"),
            relay.host,
            relay.port,
            MAIL_USE_TLS=True,
            MAIL_USERNAME=RELAY_LOGIN,
            MAIL_PASSWORD=password,
        )
        routed = setup.routed(
            "relay_routed",
            relay.host,
            relay.port,
            account={"security": "starttls", "auth": "login", "login": RELAY_LOGIN, "password": password},
            config={"SMTP_ACCOUNTS_CA_FILE": str(certs.ca_cert)},
            save_logs=False,
        )
        check_routed(routed)

        def flask_mail_alone() -> Timing:
            with genuine_flask_mail():
                return _send_singles(plain, letters)

        timings = interleaved(
            {
                "floor (smtplib)": lambda: _floor_secure(
                    plain, RELAY_LOGIN, password, str(certs.ca_cert), letters
                ),
                "plain Flask-Mail": flask_mail_alone,
                "routed": lambda: _send_singles(routed, letters),
            },
            rounds=setup.rounds,
            warmup=setup.warmup,
        )
    wall, cpu = walls(timings), cpus(timings)
    away = f"single letter, {2 * setup.delay_ms:g} ms away"
    section = Section(
        f"1. a single letter with STARTTLS and AUTH through a relay {setup.delay_ms:g} ms each way"
        f" ({2 * setup.delay_ms:g} ms round trip): mail.send, one connection each ({letters} a repetition)"
    )
    section.figures = {name: Stats.of(values, "ms/letter") for name, values in wall.items()}
    section.cpu = {name: Stats.of(values, "ms/letter") for name, values in cpu.items()}
    section.targets.append(
        Target.ratio(
            f"{away}: routed / plain Flask-Mail",
            paired_ratios(wall, "routed", "plain Flask-Mail"),
            1.03,
            "STARTTLS and AUTH, one connection per letter",
        )
    )
    section.info += [
        Target.ratio(
            f"{away}: plain Flask-Mail / floor",
            paired_ratios(wall, "plain Flask-Mail", "floor (smtplib)"),
            float("inf"),
            "floor: smtplib with a verified STARTTLS, AUTH, sendmail, QUIT",
        ),
        Target.ratio(
            f"{away}: routed / plain Flask-Mail, sender CPU",
            paired_ratios(cpu, "routed", "plain Flask-Mail"),
            float("inf"),
            "CPU time of the sending process, all its threads",
        ),
    ]
    section.notes.append(
        "plain Flask-Mail's STARTTLS does not verify the certificate (smtplib's default);"
        " the extension and the floor verify it against the run's own CA"
    )
    _note_background_writes(section, timings)
    return section


# --- 2. single letters on loopback ----------------------------------------------


def _send_singles(app: Flask, letters: int) -> Timing:
    with app.app_context(), Clock() as clock:
        for _ in range(letters):
            mail.send(letter())
        waited = wait_for_background_writes(app)
    return clock.timing(per=letters, scale=1000, after=waited)


def single_letters(setup: Setup, letters: int) -> Section:
    plain = plain_app(setup.path("single_plain"), setup.host, setup.port)
    routed = setup.routed("single_routed", save_logs=False)
    check_routed(routed)

    def flask_mail_alone() -> Timing:
        with genuine_flask_mail():
            return _send_singles(plain, letters)

    timings = interleaved(
        {"plain Flask-Mail": flask_mail_alone, "routed": lambda: _send_singles(routed, letters)},
        rounds=setup.rounds,
        warmup=setup.warmup,
    )
    wall, cpu = walls(timings), cpus(timings)
    section = Section(
        f"2. single letters on loopback, no TLS: mail.send, one connection each ({letters} a repetition)"
    )
    section.figures = {name: Stats.of(values, "ms/letter") for name, values in wall.items()}
    section.cpu = {name: Stats.of(values, "ms/letter") for name, values in cpu.items()}
    section.info += [
        Target.ratio(
            "single letter on loopback: routed / plain Flask-Mail",
            paired_ratios(wall, "routed", "plain Flask-Mail"),
            float("inf"),
            "the sender's own work; no server costs this little",
        ),
        Target.ratio(
            "single letter on loopback: routed / plain Flask-Mail, sender CPU",
            paired_ratios(cpu, "routed", "plain Flask-Mail"),
            float("inf"),
            "CPU time of the sending process, all its threads",
        ),
    ]
    _note_background_writes(section, timings)
    return section


# --- 3. the newsletter loop ---------------------------------------------------


def _floor(app: Flask, setup: Setup, letters: int) -> Timing:
    """The least any sender can do: build each letter with Flask-Mail, sendmail on one connection."""
    with app.app_context(), Clock() as clock:
        smtp = smtplib.SMTP(setup.host, setup.port)
        for _ in range(letters):
            message = letter()
            message.date = time.time()
            smtp.sendmail(SENDER[1], [RECIPIENT], message.as_bytes())
        smtp.quit()
    return clock.timing(scale=1000)


def _loop(app: Flask, letters: int) -> Timing:
    with app.app_context(), Clock() as clock:
        with mail.connect() as conn:
            for _ in range(letters):
                conn.send(letter())
        waited = wait_for_background_writes(app)
    return clock.timing(scale=1000, after=waited)


def newsletter(setup: Setup, letters: int) -> Section:
    plain = plain_app(setup.path("loop_plain"), setup.host, setup.port)
    routed = setup.routed("loop_routed", save_logs=False)
    check_routed(routed)

    def flask_mail_alone() -> Timing:
        with genuine_flask_mail():
            return _loop(plain, letters)

    timings = interleaved(
        {
            "floor (smtplib)": lambda: _floor(plain, setup, letters),
            "plain Flask-Mail": flask_mail_alone,
            "routed": lambda: _loop(routed, letters),
        },
        rounds=setup.rounds,
        warmup=setup.warmup,
    )
    wall, cpu = walls(timings), cpus(timings)
    section = Section(f"3. newsletter loop on loopback: {letters:,} letters in one mail.connect() block")
    section.figures = {name: Stats.of(values, "ms/block") for name, values in wall.items()}
    section.cpu = {name: Stats.of(values, "ms/block") for name, values in cpu.items()}
    section.targets.append(
        Target.ratio(
            "sender CPU per letter: routed / floor",
            paired_ratios(cpu, "routed", "floor (smtplib)"),
            1.30,
            "CPU time of the sending process (all its threads) in the newsletter loop; floor: Message.as_bytes()"
            " + smtplib sendmail on one connection",
        )
    )
    section.info += [
        Target.ratio(
            "newsletter loop: routed / plain Flask-Mail",
            paired_ratios(wall, "routed", "plain Flask-Mail"),
            float("inf"),
            "the whole block, connection and the letters' rows included",
        ),
        Target.ratio(
            "newsletter loop: routed / floor",
            paired_ratios(wall, "routed", "floor (smtplib)"),
            float("inf"),
            "floor: Message.as_bytes() + smtplib sendmail on one connection",
        ),
        Target.ratio(
            "newsletter loop: plain Flask-Mail / floor",
            paired_ratios(wall, "plain Flask-Mail", "floor (smtplib)"),
            float("inf"),
            "what Flask-Mail itself adds",
        ),
        Target.ratio(
            "sender CPU per letter: routed / plain Flask-Mail",
            paired_ratios(cpu, "routed", "plain Flask-Mail"),
            float("inf"),
            "CPU time of the sending process, all its threads",
        ),
    ]
    for name, stats in section.cpu.items():
        section.extra[f"{name}: sender CPU per letter, median (us)"] = round(stats.median * 1000 / letters, 1)
    _note_background_writes(section, timings)
    return section


# --- 4. choosing an account -----------------------------------------------------


def _choose_all(
    mode: str, picked: list[str], choose: t.Callable[[str], object], forget: t.Callable[[], None]
) -> None:
    if mode == "cached":
        for address in picked:
            choose(address)
    elif mode == "fresh":
        for address in picked:
            forget()
            choose(address)
    else:
        for address in picked[: len(picked) // 2]:
            forget()
            choose(address)
            choose(address)


def choosing(setup: Setup, sizes: list[int], calls: int) -> Section:
    """``choose_account`` per call, with cached, fresh and half-and-half lookups."""
    calls = max(2, calls - calls % 2)
    rng = random.Random(7)
    apps: dict[int, tuple[Flask, list[str]]] = {}
    for size in sizes:
        app = setup.routed(f"choose_{size}", account={}, save_logs=False)
        addresses = fill_accounts(app, size, setup.host, setup.port)
        picked = [addresses[rng.randrange(size)] for _ in range(calls)]
        with app.app_context():
            choice = smtp_accounts.choose_account(picked[0])
        if choice.account is None:
            raise SystemExit(f"choose_account found no account among {size} accounts")
        apps[size] = (app, picked)

    def run(size: int, mode: str) -> Timing:
        app, picked = apps[size]
        with app.app_context():
            directory = app.extensions["smtp_accounts"].directory
            choose = smtp_accounts.choose_account
            if mode == "cached":
                for address in picked:
                    choose(address)
            with Clock() as clock:
                _choose_all(mode, picked, choose, directory.forget)
        return clock.timing(per=calls, scale=1_000_000)

    section = Section(
        f"4. choose_account, per call ({calls:,} calls a repetition, addresses drawn at random)"
    )
    section.notes.append(
        "cached: the address's candidates are already in memory (one settings read a call); "
        "fresh: the cache is emptied before each call (settings read + indexed candidates query); "
        "mixed: fresh and cached calls alternate, each address looked up fresh and then again cached. "
        "A table of N accounts is asked about min(N, calls) distinct addresses, as a site with that many "
        "senders would be, so any cache keyed by address misses more on big tables"
    )
    small, large = min(sizes), max(sizes)
    for mode in ("mixed", "cached", "fresh"):
        samples = walls(
            interleaved(
                {f"{size:,} accounts, {mode}": functools.partial(run, size, mode) for size in sizes},
                rounds=setup.rounds,
                warmup=setup.warmup,
            )
        )
        for name, values in samples.items():
            section.figures[name] = Stats.of(values, "us/call")
        ratios = paired_ratios(samples, f"{large:,} accounts, {mode}", f"{small:,} accounts, {mode}")
        label = f"choose_account: {large:,} / {small:,} accounts ({mode})"
        if mode == "mixed":
            section.targets.append(Target.ratio(label, ratios, 1.5, "half fresh, half cached lookups"))
        else:
            section.info.append(Target.ratio(label, ratios, float("inf"), f"{mode} lookups only"))
    return section


# --- 5. logs ------------------------------------------------------------------------


def _folder_bytes(path: str) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, name)) for name in files)
    return total


def logs(setup: Setup, letters: int) -> Section:
    variants = {"logs off": None, "logs level 2": 2, "logs level 4": 4}
    apps: dict[str, Flask] = {}
    for name, level in variants.items():
        settings: dict[str, t.Any] = (
            {"save_logs": False} if level is None else {"save_logs": True, "log_level": level}
        )
        apps[name] = setup.routed(name.replace(" ", "_"), **settings)
        check_routed(apps[name])
    timings = interleaved(
        {name: functools.partial(_loop, app, letters) for name, app in apps.items()},
        rounds=setup.rounds,
        warmup=setup.warmup,
    )
    samples = walls(timings)
    section = Section(f"5. newsletter loop with logs ({letters:,} letters in one block, routed)")
    _note_background_writes(section, timings)
    section.figures = {name: Stats.of(values, "ms/block") for name, values in samples.items()}
    section.targets += [
        Target.ratio(
            "newsletter loop: logs level 2 / logs off",
            paired_ratios(samples, "logs level 2", "logs off"),
            1.10,
            "client and server lines",
        ),
        Target.ratio(
            "newsletter loop: logs level 4 / logs off",
            paired_ratios(samples, "logs level 4", "logs off"),
            1.30,
            "plus connection facts and the letters' data",
        ),
    ]
    cpu = cpus(timings)
    section.cpu = {name: Stats.of(values, "ms/block") for name, values in cpu.items()}
    for shown in ("2", "4"):
        section.info.append(
            Target.ratio(
                f"newsletter loop: logs level {shown} / logs off, sender CPU",
                paired_ratios(cpu, f"logs level {shown}", "logs off"),
                float("inf"),
                "CPU time of the sending process, all its threads",
            )
        )
    for name, app in apps.items():
        written = _folder_bytes(os.path.join(app.instance_path, "smtp_logs"))
        section.extra[f"{name}: bytes in the log folder afterwards"] = written
    section.notes.append(
        "a log starts over when it would pass max_log_size_mb (10 MB by default), so level 4"
        " can leave less on disk than level 2"
    )
    if not any(v for k, v in section.extra.items() if "bytes in the log folder" in k):
        section.notes.append(
            "no log file was written: smtp_logs.py writes nothing yet, so these rows measure only its hooks"
        )
    return section


# --- 6. memory --------------------------------------------------------------------------


def memory(setup: Setup, letters: int) -> Section:
    """Memory growth while routing ``letters`` in one block (settings as shipped: logs on, level 2)."""
    app = setup.routed("memory")
    check_routed(app)
    sample_every = max(1, letters // 40)

    # RSS pass, without tracemalloc (which has its own cost in memory).
    with app.app_context():
        gc.collect()
        with mail.connect() as conn:
            conn.send(letter())
            start_rss = peak_rss = rss_bytes()
            for index in range(letters):
                conn.send(letter())
                if index % sample_every == 0:
                    peak_rss = max(peak_rss, rss_bytes())
            peak_rss = max(peak_rss, rss_bytes())
    wait_for_background_writes(app)

    # tracemalloc pass: what Python objects the block holds at its peak.
    with app.app_context():
        gc.collect()
        tracemalloc.start()
        try:
            with mail.connect() as conn:
                conn.send(letter())
                tracemalloc.reset_peak()
                start_traced = tracemalloc.get_traced_memory()[0]
                for _ in range(letters):
                    conn.send(letter())
                end_traced, peak_traced = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    wait_for_background_writes(app)

    peak_growth = (peak_traced - start_traced) / MB
    retained = (end_traced - start_traced) / MB
    rss_growth = (peak_rss - start_rss) / MB
    section = Section(
        f"6. memory while routing {letters:,} letters in one block (logs as shipped: on, level 2)"
    )
    section.targets += [
        Target(
            f"memory growth over {letters:,} letters (tracemalloc peak)",
            peak_growth,
            peak_growth,
            peak_growth,
            20.0,
            "<",
            "MB",
            "peak of traced Python memory above the block's start",
        ),
        Target(
            f"memory growth over {letters:,} letters (RSS)",
            rss_growth,
            rss_growth,
            rss_growth,
            20.0,
            "<",
            "MB",
            f"largest resident size sampled every {sample_every:,} letters, above the start",
        ),
    ]
    section.extra["tracemalloc: still held at the end of the loop (MB)"] = round(retained, 3)
    return section


# --- 7. PIPELINING on and off, through the relay ------------------------------------


def _transactions(app: Flask, account: AccountInfo, letters: int) -> Timing:
    """``letters`` SMTP transactions on one connection, nothing else: the protocol's own cost."""
    with app.app_context():
        data = letter().as_bytes()
        with Clock() as clock:
            smtp = open_connection(account, None, timeout=30)
            for _ in range(letters):
                send_transaction(smtp, SENDER[1], [RECIPIENT], data)
            close_quietly(smtp)
    return clock.timing(scale=1000)


def routed_pipelining(setup: Setup, name: str, host: str, port: int) -> dict[bool, Flask]:
    """Two routed apps (folders ``<name>_on`` and ``<name>_off``) whose account has PIPELINING on and off."""
    return {
        on: setup.routed(
            f"{name}_{'on' if on else 'off'}",
            host,
            port,
            account={"security": "none", "auth": "none", "pipelining": on},
            save_logs=False,
        )
        for on in (True, False)
    }


def pipelining(setup: Setup, letters: int) -> Section:
    """``letters`` letters on one connection to a server :attr:`Setup.delay_ms` each way, pipelining on and off."""
    with start_relay(setup.port, setup.delay_ms) as relay:
        apps = routed_pipelining(setup, "pipelining", relay.host, relay.port)
        for app in apps.values():
            check_routed(app)
        accounts = {
            on: AccountInfo(
                id=0,
                active=True,
                sender_name="",
                sender_email=SENDER[1],
                host=relay.host,
                port=relay.port,
                security="none",
                auth="none",
                login="",
                verify_tls=True,
                pipelining=on,
            )
            for on in (True, False)
        }
        timings = interleaved(
            {
                "routed, pipelining on": lambda: _loop(apps[True], letters),
                "routed, pipelining off": lambda: _loop(apps[False], letters),
                "transactions alone, pipelining on": lambda: _transactions(
                    apps[True], accounts[True], letters
                ),
                "transactions alone, pipelining off": lambda: _transactions(
                    apps[False], accounts[False], letters
                ),
            },
            rounds=setup.rounds,
            warmup=setup.warmup,
        )
    wall = walls(timings)
    away = f"{letters:,} letters, {2 * setup.delay_ms:g} ms away"
    section = Section(
        f"7. PIPELINING: {letters:,} letters on one connection through a relay {setup.delay_ms:g} ms each way"
        " (mail.connect() block routed; and the SMTP transactions alone, no message log)"
    )
    section.figures = {name: Stats.of(values, "ms/block") for name, values in wall.items()}
    section.info += [
        Target.ratio(
            f"{away}: routed, pipelining on / off",
            paired_ratios(wall, "routed, pipelining on", "routed, pipelining off"),
            float("inf"),
            "the whole block: the letters' message-log rows included",
        ),
        Target.ratio(
            f"{away}: transactions alone, pipelining on / off",
            paired_ratios(wall, "transactions alone, pipelining on", "transactions alone, pipelining off"),
            float("inf"),
            "MAIL, RCPT, DATA in one write: 2 round trips a letter instead of 4",
        ),
    ]
    for name, stats in section.figures.items():
        section.extra[f"{name}: per letter, median (ms)"] = round(stats.median / letters, 1)
    return section
