"""A log session keeps its file open across letters; other writers still see (and leave) every entry whole.

The session trusts what it remembers of the file's first line only while
the file is as its own last write left it. These tests have other writers
append, rotate and delete between a session's entries, and read the file
as an administrator would.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from concurrency import run_writers

from flask_smtp_accounts import AccountInfo, SettingsInfo
from flask_smtp_accounts.log_files import LogFiles, period_end, period_start
from flask_smtp_accounts.smtp_logs import LogSession, SMTPLogs

# The SMTP log files on disk, written with SMTPLogs alone: no site, no database.
pytestmark = pytest.mark.one_database

CHANGED = datetime(2030, 1, 1)
LOG = "send_admin_smtp_7.log"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def account(changed: datetime = CHANGED) -> AccountInfo:
    return AccountInfo(
        7, True, "", "hello@example.com", "127.0.0.1", 25, "none", "none", "", True, updated_at=changed
    )


def session(logs: SMTPLogs, changed: datetime = CHANGED, **settings: Any) -> LogSession:
    settings.setdefault("max_log_size_mb", 0)
    made = logs.session(account(changed), "send", SettingsInfo(save_logs=True, log_level=2, **settings))
    assert made is not None
    return made


def letter(log: LogSession, message_id: str, lines: int = 1) -> None:
    """One letter's entry; like a connection's, it is written when the next letter begins (or at close)."""
    log.begin(f"<{message_id}@test>")
    for n in range(lines):
        log.client(f"{message_id} line {n:03d} " + "x" * 40)
    log.server(250, ["OK"])
    log.end("sent")


def message_ids(folder: Path) -> list[str]:
    return re.findall(r"Message-ID <([\w-]+)@test>", (folder / LOG).read_text())


def first_line(folder: Path) -> str:
    return (folder / LOG).read_text().partition("\n")[0]


def test_an_open_session_appends_after_other_writers(tmp_path):
    clock = Clock(CHANGED + timedelta(hours=1))
    logs = SMTPLogs(str(tmp_path), clock=clock)
    kept_open = session(logs)
    letter(kept_open, "a1")
    letter(kept_open, "a2")  # a1 written

    other = session(logs)
    letter(other, "b1")
    other.close()
    letter(kept_open, "a3")  # a2 written
    kept_open.close()  # a3 written

    assert message_ids(tmp_path) == ["a1", "b1", "a2", "a3"]
    assert (tmp_path / LOG).read_text().count("#smtp-accounts-log") == 1


def test_a_rotation_by_another_writer_is_not_repeated_by_an_open_session(tmp_path):
    clock = Clock(CHANGED + timedelta(hours=1))
    logs = SMTPLogs(str(tmp_path), clock=clock)
    kept_open = session(logs, log_rewrite_period="day")
    letter(kept_open, "day1-a")
    letter(kept_open, "day1-b")  # day1-a written
    first_day = first_line(tmp_path)

    clock.now += timedelta(days=1)
    other = session(logs, log_rewrite_period="day")
    letter(other, "day2-other")
    other.close()  # the new day starts the log over, with this entry
    letter(kept_open, "day2-a")  # day1-b, a day late, joins the new day's log
    kept_open.close()

    assert first_line(tmp_path) != first_day
    assert message_ids(tmp_path) == ["day2-other", "day1-b", "day2-a"]


def test_an_open_session_starts_over_when_the_period_passes_between_its_letters(tmp_path):
    clock = Clock(CHANGED + timedelta(hours=1))
    logs = SMTPLogs(str(tmp_path), clock=clock)
    log = session(logs, log_rewrite_period="week")
    for day in range(9):
        letter(log, f"day{day}")
        clock.now += timedelta(days=1)
    log.close()

    assert message_ids(tmp_path) == ["day6", "day7", "day8"]  # written a day after they began
    assert first_line(tmp_path).endswith(f"since={(CHANGED + timedelta(days=7)).isoformat()}")


def test_an_open_session_keeps_to_the_size_limit_counting_other_writers(tmp_path):
    clock = Clock(CHANGED + timedelta(hours=1))
    logs = SMTPLogs(str(tmp_path), clock=clock)
    kept_open = session(logs, max_log_size_mb=1)
    letter(kept_open, "open-1", lines=5000)  # about 300 KB each
    other = session(logs, max_log_size_mb=1)
    for n in range(3):
        letter(other, f"other-{n}", lines=5000)
        letter(kept_open, f"open-{n + 2}", lines=5000)
    other.close()
    kept_open.close()

    # Written: open-1, other-0, open-2, then other-1 starts over, open-3, other-2, then open-4 starts over.
    assert message_ids(tmp_path) == ["open-4"]
    assert (tmp_path / LOG).stat().st_size <= 1024 * 1024


def test_a_log_deleted_under_an_open_session_starts_again(tmp_path):
    logs = SMTPLogs(str(tmp_path), clock=Clock(CHANGED + timedelta(hours=1)))
    log = session(logs)
    letter(log, "before")
    letter(log, "deleted")  # "before" written
    assert LogFiles(str(tmp_path)).delete(7, "send")
    letter(log, "after")  # "deleted" written, to a new file
    log.close()

    assert message_ids(tmp_path) == ["deleted", "after"]
    assert first_line(tmp_path).startswith("#smtp-accounts-log kind=send account=7")


def descriptors_on(path: Path) -> int:
    """How many of this process's file descriptors are open on ``path`` (Linux ``/proc``)."""
    count = 0
    for fd in Path("/proc/self/fd").iterdir():
        try:
            count += Path(fd).resolve() == path.resolve()
        except OSError:
            continue
    return count


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_a_session_holds_one_descriptor_until_it_is_closed(tmp_path):
    logs = SMTPLogs(str(tmp_path), clock=Clock(CHANGED + timedelta(hours=1)))
    log = session(logs)
    letter(log, "one")
    letter(log, "two")
    letter(log, "three")
    assert descriptors_on(tmp_path / LOG) == 1

    log.close()

    assert descriptors_on(tmp_path / LOG) == 0
    assert message_ids(tmp_path) == ["one", "two", "three"]


WRITERS_LINES = 40


def write_entries(log_dir: str, writer: str, count: int, barrier: Any) -> None:
    """Write ``count`` entries through one session kept open throughout (threads and processes)."""
    logs = SMTPLogs(log_dir, clock=lambda: CHANGED + timedelta(hours=1))
    log = session(logs)
    barrier.wait(timeout=60)
    for n in range(count):
        letter(log, f"{writer}-{n}", lines=WRITERS_LINES)
    log.close()


def test_open_sessions_in_threads_and_processes_leave_every_entry_whole(tmp_path):
    count = 60
    run_writers(write_entries, str(tmp_path), count)

    text = (tmp_path / LOG).read_text()
    assert text.count("#smtp-accounts-log") == 1
    blocks = text.partition("\n")[2][:-2].split("\n\n")
    seen = set()
    for block in blocks:
        head, *lines = block.split("\n")
        match = re.search(r"Message-ID <(\w+)-(\d+)@test> \| sent$", head)
        assert match, head
        writer, n = match.groups()
        assert lines == [f"C: {writer}-{n} line {i:03d} " + "x" * 40 for i in range(WRITERS_LINES)] + [
            "S: 250 OK"
        ]
        seen.add((writer, int(n)))
    assert len(blocks) == len(seen) == 10 * count


@pytest.mark.parametrize("period", ["day", "week", "month", "year"])
def test_period_end_is_where_the_next_period_starts(period):
    anchors = [
        datetime(2024, 1, 31, 10),
        datetime(2024, 2, 29, 23, 59),
        datetime(2023, 12, 31),
        datetime(2024, 5, 15, 8),
    ]
    for anchor in anchors:
        now = anchor
        for _ in range(30):
            start = period_start(anchor, period, now)
            end = period_end(anchor, period, start)
            assert start <= now < end
            assert period_start(anchor, period, end - timedelta(microseconds=1)) == start
            assert period_start(anchor, period, end) == end
            now = end + timedelta(hours=5)
