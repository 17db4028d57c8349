"""Per-account SMTP logs (issue 3), against real SMTP servers.

Each test reads what an administrator would read: the log files (through
the Python API or on disk) and the ``logging`` records a site's own
handlers would receive.
"""

from __future__ import annotations

import base64
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apps import make_site
from concurrency import run_writers
from flask import current_app
from flask_mail import Message

from flask_smtp_accounts import (
    AccountInfo,
    DeliveryError,
    LogAddressError,
    LogNotFoundError,
    SettingsInfo,
    SMTPAccountsError,
)
from flask_smtp_accounts.connection import open_connection
from flask_smtp_accounts.log_files import period_start
from flask_smtp_accounts.smtp_logs import CHECK_LOGGER, SEND_LOGGER, SMTPLogs
from flask_smtp_accounts.testing import LOGIN, PASSWORD, Certs, SMTPServer, free_port

RCPT = "bob@example.org"
HEAD = re.compile(r"^(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC \| (?P<rest>.*)$")


@dataclass
class Entry:
    head: str
    lines: list[str]

    @property
    def rest(self) -> str:
        """The first line after the time: account, Message-ID, outcome."""
        match = HEAD.match(self.head)
        assert match, self.head
        return match["rest"]

    def having(self, prefix: str) -> list[str]:
        return [line for line in self.lines if line.startswith(prefix)]


def entries(text: str) -> list[Entry]:
    """The entries of a log file's text (its first line is the rotation record)."""
    first, _, body = text.partition("\n")
    assert first.startswith("#smtp-accounts-log "), first
    assert body.endswith("\n\n"), "the last entry is not whole"
    found = []
    for block in body[:-2].split("\n\n"):
        head, *lines = block.split("\n")
        assert HEAD.match(head), head
        found.append(Entry(head, lines))
    return found


def log_text(ext: Any, account_id: int, kind: str) -> str:
    return str(ext.read_log(account_id, kind, length=1 << 30).text)


def log_entries(ext: Any, account_id: int, kind: str) -> list[Entry]:
    return entries(log_text(ext, account_id, kind))


def log_dir() -> Path:
    return Path(current_app.extensions["smtp_accounts"].smtp_logs.log_dir)


def letter(body: str = "First line.\n.A line that starts with a dot.", **kwargs: Any) -> Message:
    return Message("Hello", sender="hello@example.com", recipients=[RCPT], body=body, **kwargs)


def normalise(line: str) -> str:
    return re.sub(r"\d+", "N", line)


class OnlyMechanism(SMTPServer):
    """A STARTTLS server that offers a single AUTH mechanism, so the client must use it."""

    def __init__(self, mechanism: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mechanism = mechanism

    def _controller_kwargs(self) -> dict[str, Any]:
        kwargs = super()._controller_kwargs()
        kwargs["auth_exclude_mechanism"] = [m for m in ("PLAIN", "LOGIN") if m != self.mechanism]
        return kwargs


class Clock:
    """The logs' clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(app: Any) -> Clock:
    clock = Clock(datetime(2030, 1, 1))
    current_app.extensions["smtp_accounts"].smtp_logs.clock = clock
    return clock


# --- what each level holds --------------------------------------------------------


def test_each_level_holds_the_one_below_and_its_own_lines(ext, mail, add_account, starttls_server):
    account = add_account(starttls_server, sender_name="Hello")
    seen: dict[int, Entry] = {}
    texts: dict[int, str] = {}
    for level in (1, 2, 3, 4):
        ext.update_settings(log_level=level)
        ext.delete_log(account.id, "send")
        message = letter()
        mail.send(message)
        texts[level] = log_text(ext, account.id, "send")
        [seen[level]] = entries(texts[level])
        assert (
            seen[level].rest
            == f"account {account.id} (Hello <hello@example.com>) | Message-ID {message.msgId} | sent"
        )
    assert len(starttls_server.wait_for(4)) == 4

    kinds = {level: {line.split(" ", 1)[0] for line in entry.lines} for level, entry in seen.items()}
    assert kinds == {1: {"C:"}, 2: {"C:", "S:"}, 3: {"C:", "S:", "*"}, 4: {"C:", "S:", "*", "D:"}}

    client = [normalise(line) for line in seen[1].lines]
    assert client[0].startswith("C: ehlo ") and client[2] == client[0]
    assert (client[1], client[3]) == ("C: STARTTLS", "C: AUTH PLAIN [redacted]")
    assert client[4].startswith("C: mail FROM:<hello@example.com>")
    assert client[5:] == ["C: rcpt TO:<bob@example.org>", "C: data", "C: [letter data, N bytes]", "C: quit"]
    for level in (2, 3, 4):
        assert [normalise(line) for line in seen[level].having("C:")] == client
    for level in (3, 4):
        assert seen[level].having("S:") == seen[2].having("S:")
    assert "S: 235 2.7.0 Authentication successful" in seen[2].lines
    assert seen[2].having("S:")[-1].startswith("S: 221")

    events = "\n".join(seen[3].having("*"))
    assert f"* connecting to 127.0.0.1:{starttls_server.port}" in events
    assert re.search(r"TLS TLSv1\.[23] cipher \S+", events)
    assert "certificate subject" in events and "verified" in events
    assert re.search(r"\* send took [\d.]+ ms", events)
    assert [normalise(line) for line in seen[4].having("*")] == [
        normalise(line) for line in seen[3].having("*")
    ]

    data = seen[4].having("D:")
    assert "D: Subject: Hello" in data
    assert "D: First line." in data
    assert "D: ..A line that starts with a dot." in data  # as on the wire: dot-stuffed
    assert data[-1] == "D: ."
    for level in (1, 2, 3):
        assert "First line." not in texts[level]


def test_letters_of_one_connection_get_one_entry_each(ext, mail, add_account, starttls_server):
    account = add_account(starttls_server)
    first, second = letter(), letter()
    with mail.connect() as connection:
        connection.send(first)
        connection.send(second)
    one, two = log_entries(ext, account.id, "send")
    assert one.rest.endswith(f"| Message-ID {first.msgId} | sent")
    assert two.rest.endswith(f"| Message-ID {second.msgId} | sent")
    # The connection's opening belongs to the first letter, its QUIT to the last.
    assert "C: AUTH PLAIN [redacted]" in one.lines and "C: quit" not in one.lines
    assert two.having("C:")[0].startswith("C: mail FROM:") and two.having("C:")[-1] == "C: quit"


def test_a_failed_letter_names_its_message_id_and_the_reply(ext, mail, add_account, make_smtp_server, caplog):
    class Refuse:
        async def handle_RCPT(self, *args: Any) -> str:
            return "550 5.1.1 No such user here"

    refusing = make_smtp_server(handler_hooks=Refuse())
    account = add_account(refusing)
    caplog.set_level(logging.INFO, logger="flask_smtp_accounts.smtp")
    message = letter()
    with pytest.raises(DeliveryError):
        mail.send(message)
    [entry] = log_entries(ext, account.id, "send")
    assert entry.rest.startswith(
        f"account {account.id} (hello@example.com) | Message-ID {message.msgId} | failed"
    )
    assert entry.rest.endswith("SMTPRecipientsRefused")
    assert "S: 550 5.1.1 No such user here" in entry.lines
    [record] = [r for r in caplog.records if r.name == SEND_LOGGER]
    assert record.levelno == logging.WARNING
    assert record.smtp_outcome == entry.rest.rpartition(" | ")[2]


def test_a_letter_whose_server_cannot_be_reached_names_its_message_id(ext, mail, add_account, smtp_server):
    account = add_account(smtp_server)
    ext.update_account(account.id, port=free_port(), check=False)
    message = letter()
    with pytest.raises(DeliveryError):
        mail.send(message)
    [entry] = log_entries(ext, account.id, "send")
    assert re.fullmatch(
        rf"account {account.id} \(hello@example.com\) \| Message-ID {re.escape(message.msgId)} \| failed: connect failed .*",
        entry.rest,
    )


# --- nothing secret -------------------------------------------------------------


def secret_forms(login: str, password: str) -> list[str]:
    """The password and every AUTH payload that could carry it or the login."""

    def b64(text: str, encoding: str = "utf-8") -> str:
        return base64.b64encode(text.encode(encoding)).decode()

    forms = [password, "s3cret", password.encode().decode("ascii", "backslashreplace")]
    for encoding in ("utf-8", "latin-1"):
        for payload in (password, login, f"\0{login}\0{password}", f"{login}\0{password}"):
            forms.append(b64(payload, encoding))
            forms.append(b64(payload, encoding).rstrip("="))
    return forms


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_no_log_file_and_no_record_holds_a_secret(ext, mail, certs: Certs, caplog, mechanism):
    caplog.set_level(logging.DEBUG, logger="flask_smtp_accounts")
    wrong = "Wr0ng-Pässwörd"
    with OnlyMechanism(
        mechanism, tls="starttls", cert=(certs.server_cert, certs.server_key), auth=(LOGIN, PASSWORD)
    ) as server:
        fields = {
            "sender_email": "hello@example.com",
            "host": server.host,
            "port": server.port,
            "login": LOGIN,
        }
        account = ext.add_account(password=PASSWORD, **fields)  # checked: id 0's log
        for level in (1, 2, 3, 4):
            ext.update_settings(log_level=level, test_recipient=RCPT)
            assert ext.check_account(ext.get_account(account.id), send_test=True).ok
            assert not ext.check_account(fields, password=wrong).ok
            mail.send(letter())
        assert {(a.mechanism, a.success) for a in server.auth_attempts} == {
            (mechanism, True),
            (mechanism, False),
        }
        assert len(server.wait_for(8)) == 8

    files = {path.name: path.read_text("utf-8") for path in log_dir().iterdir()}
    assert set(files) == {
        "check_admin_smtp_0.log",
        f"check_admin_smtp_{account.id}.log",
        f"send_admin_smtp_{account.id}.log",
    }
    records = [r for r in caplog.records if r.name.startswith("flask_smtp_accounts.smtp")]
    assert len(records) == 4 * 3 + 1
    everything = list(files.values()) + [r.getMessage() for r in records] + [repr(vars(r)) for r in records]
    for form in secret_forms(LOGIN, PASSWORD) + secret_forms(LOGIN, wrong):
        leaks = [text for text in everything if form in text]
        assert not leaks, f"{form!r} leaked"
    # The AUTH exchange was logged, redacted.
    for text in files.values():
        assert f"C: AUTH {mechanism} [redacted]" in text
        if mechanism == "LOGIN":
            assert "S: 334 [redacted]" in text and "\nC: [redacted]\n" in text


@pytest.mark.one_database
def test_the_data_hook_never_sees_the_auth_exchange(certs: Certs):
    class Recorder:
        def __init__(self) -> None:
            self.calls: list[tuple[str, Any]] = []

        def client(self, line: str) -> None:
            self.calls.append(("client", line))

        def server(self, code: int, lines: list[str]) -> None:
            self.calls.append(("server", (code, lines)))

        def event(self, text: str) -> None:
            self.calls.append(("event", text))

        def data(self, payload: bytes) -> None:
            self.calls.append(("data", payload))

    recorder = Recorder()
    with OnlyMechanism(
        "LOGIN", tls="starttls", cert=(certs.server_cert, certs.server_key), auth=(LOGIN, PASSWORD)
    ) as server:
        account = AccountInfo(
            0, True, "", "hello@example.com", server.host, server.port, "starttls", "login", LOGIN, True
        )
        smtp = open_connection(account, PASSWORD, timeout=5, ca_file=str(certs.ca_cert), transcript=recorder)
        smtp.sendmail("hello@example.com", [RCPT], b"Subject: x\r\n\r\n.body\r\n")
        smtp.quit()
    assert [payload for kind, payload in recorder.calls if kind == "data"] == [
        b"Subject: x\r\n\r\n..body\r\n.\r\n"
    ]
    auth = [value for kind, value in recorder.calls if kind == "client" and value.startswith("AUTH")]
    assert auth == ["AUTH LOGIN [redacted]"]
    assert not [
        call for call in recorder.calls if any(form in repr(call) for form in secret_forms(LOGIN, PASSWORD))
    ]


# --- which file ----------------------------------------------------------------


def test_the_check_of_an_unsaved_account_goes_to_the_log_of_id_0(ext, starttls_server):
    fields = {
        "sender_email": "new@example.com",
        "sender_name": "New",
        "host": starttls_server.host,
        "port": starttls_server.port,
        "login": LOGIN,
    }
    assert ext.check_account(fields, password=PASSWORD).ok
    account = ext.add_account(password=PASSWORD, **{**fields, "sender_email": "other@example.com"})
    assert sorted(path.name for path in log_dir().iterdir()) == ["check_admin_smtp_0.log"]
    one, two = log_entries(ext, 0, "check")
    assert one.rest == "new account (New <new@example.com>) | ok"
    assert two.rest == "new account (New <other@example.com>) | ok"
    assert "C: AUTH PLAIN [redacted]" in one.lines
    [listed] = ext.list_logs()
    assert (listed.account_id, listed.kind, listed.label) == (0, "check", "New account (not saved yet)")
    assert ext.check_account(account).ok
    [entry] = log_entries(ext, account.id, "check")
    assert entry.rest == f"account {account.id} (New <other@example.com>) | ok"


def test_save_logs_off_writes_nothing_and_creates_no_file(ext, mail, add_account, starttls_server, caplog):
    caplog.set_level(logging.DEBUG, logger="flask_smtp_accounts")
    account = add_account(starttls_server)
    ext.update_settings(save_logs=False, log_level=4)
    mail.send(letter())
    assert ext.check_account(account).ok
    assert not ext.check_account(
        {"sender_email": "x@example.com", "host": starttls_server.host, "port": free_port(), "auth": "none"}
    ).ok
    assert starttls_server.wait_for(1)
    assert not log_dir().exists()
    assert ext.list_logs() == []
    assert [r for r in caplog.records if r.name.startswith("flask_smtp_accounts.smtp")] == []
    state = current_app.extensions["smtp_accounts"]
    assert state.smtp_logs.session(ext.account_info(account), "send", ext.settings) is None


# --- rotation ----------------------------------------------------------------------


def message_ids(ext: Any, account_id: int) -> list[str]:
    return [re.search(r"Message-ID (\S+)", entry.rest)[1] for entry in log_entries(ext, account_id, "send")]  # type: ignore[index]


def test_a_log_starts_over_when_its_account_changes(ext, mail, add_account, starttls_server):
    account = add_account(starttls_server)
    before = letter()
    mail.send(before)
    assert ext.check_account(account).ok
    assert message_ids(ext, account.id) == [before.msgId]
    ext.update_account(account.id, sender_name="Renamed", check=False)
    after = letter()
    mail.send(after)
    assert message_ids(ext, account.id) == [after.msgId]
    assert log_entries(ext, account.id, "send")[0].rest.startswith(
        f"account {account.id} (Renamed <hello@example.com>)"
    )
    assert ext.check_account(ext.get_account(account.id)).ok
    [check] = log_entries(ext, account.id, "check")
    assert check.rest == f"account {account.id} (Renamed <hello@example.com>) | ok"


@pytest.mark.parametrize(
    ("period", "inside", "outside"),
    [
        ("day", timedelta(hours=23), timedelta(hours=25)),
        ("week", timedelta(days=6, hours=23), timedelta(days=7, hours=1)),
        ("month", timedelta(days=27), timedelta(days=32)),
        ("year", timedelta(days=364), timedelta(days=367)),
    ],
)
def test_a_log_starts_over_when_its_period_has_passed(
    ext, mail, add_account, starttls_server, clock, period, inside, outside
):
    ext.update_settings(log_rewrite_period=period)
    account = add_account(starttls_server)
    changed = ext.get_account(account.id).updated_at
    sent = []
    for offset in (timedelta(hours=1), inside, outside, outside + timedelta(hours=1)):
        clock.now = changed + offset
        sent.append(letter())
        mail.send(sent[-1])
        if offset == inside:
            assert message_ids(ext, account.id) == [sent[0].msgId, sent[1].msgId]
    assert message_ids(ext, account.id) == [sent[2].msgId, sent[3].msgId]
    assert log_entries(ext, account.id, "send")[0].head.startswith(
        f"{clock.now - timedelta(hours=1):%Y-%m-%d %H:%M:%S} UTC |"
    )


def test_periods_follow_each_other_from_the_last_change(ext, mail, add_account, starttls_server, clock):
    account = add_account(starttls_server)
    changed = ext.get_account(account.id).updated_at
    sent = []
    for hours in (71, 73, 92):  # day 3 ends at hour 72 after the change
        clock.now = changed + timedelta(hours=hours)
        sent.append(letter())
        mail.send(sent[-1])
    assert message_ids(ext, account.id) == [sent[1].msgId, sent[2].msgId]


def test_the_log_of_id_0_counts_its_period_from_its_first_entry(ext, starttls_server, clock):
    fields = {
        "sender_email": "new@example.com",
        "host": starttls_server.host,
        "port": starttls_server.port,
        "login": LOGIN,
    }
    for hours in (0, 23, 25):
        clock.now = datetime(2030, 1, 1) + timedelta(hours=hours)
        assert ext.check_account(fields, password=PASSWORD).ok
    assert [entry.head[:16] for entry in log_entries(ext, 0, "check")] == ["2030-01-02 01:00"]


@pytest.mark.one_database
def test_period_start_clamps_to_short_months():
    jan31 = datetime(2024, 1, 31, 10)
    assert period_start(jan31, "month", datetime(2024, 2, 29, 9)) == jan31
    assert period_start(jan31, "month", datetime(2024, 2, 29, 10)) == datetime(2024, 2, 29, 10)
    assert period_start(jan31, "month", datetime(2024, 3, 30)) == datetime(2024, 2, 29, 10)
    assert period_start(jan31, "month", datetime(2024, 3, 31, 11)) == datetime(2024, 3, 31, 10)
    leap = datetime(2024, 2, 29)
    assert period_start(leap, "year", datetime(2025, 3, 1)) == datetime(2025, 2, 28)
    assert period_start(leap, "year", datetime(2028, 2, 29)) == leap.replace(year=2028)
    assert period_start(jan31, "week", datetime(2024, 2, 14, 9)) == datetime(2024, 2, 7, 10)
    assert period_start(jan31, "day", jan31 - timedelta(days=2)) == jan31  # a clock behind the change


@pytest.mark.parametrize(("limit", "kept"), [(1, [1]), (0, [0, 1])])
def test_a_log_starts_over_when_it_would_pass_its_size_limit(
    ext, mail, add_account, starttls_server, limit, kept
):
    ext.update_settings(log_level=4, max_log_size_mb=limit)
    account = add_account(starttls_server)
    big = "\n".join(f"{n:06d} " + "x" * 70 for n in range(8000))  # about 600 kB
    sent = [letter(big), letter(big)]
    mail.send(sent[0])
    assert message_ids(ext, account.id) == [sent[0].msgId]
    mail.send(sent[1])
    assert message_ids(ext, account.id) == [sent[n].msgId for n in kept]
    size = ext.list_logs()[0].size
    assert size > 1024 * 1024 if limit == 0 else size < 1024 * 1024


# --- the Python API ---------------------------------------------------------------


def test_list_read_and_delete_by_account_and_kind(ext, mail, add_account, starttls_server):
    account = add_account(starttls_server, sender_name="Hello")
    mail.send(letter())
    assert ext.check_account(account).ok
    for junk in ("notes.txt", "send_admin_smtp_x.log", "send_admin_smtp_01.log"):
        (log_dir() / junk).write_text("not a log")

    listed = ext.list_logs()
    assert [(log.account_id, log.kind, log.label, log.filename) for log in listed] == [
        (account.id, "send", "Hello <hello@example.com>", f"send_admin_smtp_{account.id}.log"),
        (account.id, "check", "Hello <hello@example.com>", f"check_admin_smtp_{account.id}.log"),
    ]
    path = log_dir() / f"send_admin_smtp_{account.id}.log"
    raw = path.read_bytes()
    assert listed[0].size == len(raw)
    assert listed[0].modified == datetime.fromtimestamp(path.stat().st_mtime, UTC).replace(tzinfo=None)

    chunk = ext.read_log(account.id, "send", offset=10, length=20)
    assert (chunk.offset, chunk.end, chunk.size, chunk.text) == (10, 30, len(raw), raw[10:30].decode())
    tail = ext.read_log(account.id, "send", offset=-50)
    assert (tail.offset, tail.text) == (len(raw) - 50, raw[-50:].decode())
    past = ext.read_log(account.id, "send", offset=len(raw) + 100)
    assert (past.offset, past.end, past.text) == (len(raw), len(raw), "")
    assert ext.read_log(account.id, "send").text == raw[:65536].decode()

    assert ext.delete_log(account.id, "send") is True
    assert not path.exists()
    assert ext.delete_log(account.id, "send") is False
    with pytest.raises(LogNotFoundError) as missing:
        ext.read_log(account.id, "send")
    assert isinstance(missing.value, LookupError) and isinstance(missing.value, SMTPAccountsError)
    assert str(missing.value) == f"There is no send log for account {account.id}."

    ext.delete_account(account.id)
    assert [(log.account_id, log.label) for log in ext.list_logs()] == [
        (account.id, f"Account {account.id} (deleted)")
    ]


@pytest.mark.parametrize(
    ("account_id", "kind"),
    [
        ("../../etc/passwd", "send"),
        ("3", "send"),
        (-1, "send"),
        (True, "send"),
        (1.0, "send"),
        (None, "check"),
        (1, "../send"),
        (1, "SEND"),
        (1, "send/../check"),
        (1, ""),
        (1, None),
    ],
)
def test_a_log_is_addressed_by_account_id_and_kind_only(ext, account_id, kind):
    for call in (ext.read_log, ext.delete_log):
        with pytest.raises(LogAddressError, match=r"account id|'send' or 'check'"):
            call(account_id, kind)


# --- logging underneath ------------------------------------------------------------


def test_entries_reach_the_sites_own_logging_handlers(ext, mail, add_account, starttls_server):
    seen: list[logging.LogRecord] = []

    class SiteHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    parent = logging.getLogger("flask_smtp_accounts.smtp")
    handler = SiteHandler()
    parent.addHandler(handler)
    parent.setLevel(logging.INFO)
    try:
        account = add_account(starttls_server)
        message = letter()
        mail.send(message)
        assert ext.check_account(account).ok
    finally:
        parent.removeHandler(handler)
        parent.setLevel(logging.NOTSET)
    send, check = seen
    assert (send.name, check.name) == (SEND_LOGGER, CHECK_LOGGER)
    assert send.levelno == check.levelno == logging.INFO
    assert (send.smtp_kind, send.smtp_account_id, send.smtp_account) == (
        "send",
        account.id,
        "hello@example.com",
    )
    assert (send.smtp_message_id, send.smtp_outcome) == (message.msgId, "sent")
    assert send.getMessage() + "\n\n" == log_text(ext, account.id, "send").partition("\n")[2]
    assert list(send.smtp_transcript) == log_entries(ext, account.id, "send")[0].lines
    assert check.smtp_outcome == "ok" and check.smtp_message_id is None


# --- several writers at once --------------------------------------------------------

WRITERS_LINES = 150
CHANGED = datetime(2030, 1, 1)


def write_entries(log_dir: str, writer: str, count: int, barrier: Any) -> None:
    """Write ``count`` entries to account 7's send log (run in threads and in processes)."""
    logs = SMTPLogs(log_dir, clock=lambda: CHANGED + timedelta(hours=1))
    account = AccountInfo(
        7, True, "", "hello@example.com", "127.0.0.1", 25, "none", "none", "", True, updated_at=CHANGED
    )
    settings = SettingsInfo(save_logs=True, log_level=2, max_log_size_mb=0)
    barrier.wait(timeout=60)
    for n in range(count):
        session = logs.session(account, "send", settings)
        assert session is not None
        session.begin(f"<{writer}-{n}@test>")
        for line in range(WRITERS_LINES):
            session.client(f"{writer} {n} {line:03d} " + "x" * 60)
        session.server(250, ["OK"])
        session.end("sent")
        session.close()


@pytest.mark.one_database
def test_threads_and_processes_leave_every_entry_whole(tmp_path):
    count = 30
    run_writers(write_entries, str(tmp_path), count)

    found = entries((tmp_path / "send_admin_smtp_7.log").read_text())
    written = set()
    for entry in found:
        match = re.fullmatch(
            r"account 7 \(hello@example.com\) \| Message-ID <(\w+)-(\d+)@test> \| sent", entry.rest
        )
        assert match, entry.head
        writer, n = match.groups()
        expected = [f"C: {writer} {n} {line:03d} " + "x" * 60 for line in range(WRITERS_LINES)] + [
            "S: 250 OK"
        ]
        assert entry.lines == expected
        written.add((writer, int(n)))
    assert len(found) == len(written) == 10 * count


def test_a_log_deleted_between_letters_starts_again_with_the_next_one(
    ext, mail, add_account, starttls_server
):
    account = add_account(starttls_server)
    with mail.connect() as connection:
        connection.send(letter())
        assert (
            ext.delete_log(account.id, "send") is False
        )  # an entry is written once the next begins (or QUIT)
        later = letter()
        connection.send(later)
        assert ext.delete_log(account.id, "send") is True
    assert message_ids(ext, account.id) == [later.msgId]


def test_a_refused_login_is_logged_with_the_servers_reply(ext, certs: Certs):
    with SMTPServer(
        tls="starttls", cert=(certs.server_cert, certs.server_key), auth=(LOGIN, "another")
    ) as server:
        fields = {
            "sender_email": "hello@example.com",
            "host": server.host,
            "port": server.port,
            "login": LOGIN,
        }
        result = ext.check_account(fields, password=PASSWORD)
    assert not result.ok and result.stage == "login"
    [entry] = log_entries(ext, 0, "check")
    assert entry.rest.startswith("new account (hello@example.com) | failed: login failed")
    assert "C: AUTH PLAIN [redacted]" in entry.lines
    assert [line for line in entry.lines if line.startswith("S: 535")]


@pytest.mark.parametrize("absolute", [False, True])
def test_the_log_folder_is_resolved_against_the_instance_folder(
    tmp_path, encryption_key, certs, starttls_server, absolute
):
    configured = str(tmp_path / "elsewhere" / "logs") if absolute else "private/smtp"
    site = make_site(
        tmp_path / "instance",
        SMTP_ACCOUNTS_ENCRYPTION_KEYS=encryption_key,
        SMTP_ACCOUNTS_CA_FILE=str(certs.ca_cert),
        SMTP_ACCOUNTS_LOG_DIR=configured,
    )
    fields = {
        "sender_email": "new@example.com",
        "host": starttls_server.host,
        "port": starttls_server.port,
        "login": LOGIN,
    }
    with site.app.app_context():
        assert site.ext.check_account(fields, password=PASSWORD).ok
        site.db.session.remove()
        site.db.engine.dispose()
    expected = Path(configured) if absolute else tmp_path / "instance" / "private" / "smtp"
    assert [path.name for path in expected.iterdir()] == ["check_admin_smtp_0.log"]
