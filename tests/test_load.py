"""Load: threads sending at once, and a long newsletter loop in one connection block."""

from __future__ import annotations

import gc
import os
import re
import threading
from collections import Counter

from flask_mail import Message

THREADS, LETTERS = 4, 250
SENDERS = ("one@example.com", "two@example.com")
ENTRY_HEAD = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \| account (\d+) \(.*\) \| Message-ID (<[^>]+>) \| (.+)$"
)


def test_four_threads_send_each_letter_exactly_once_and_log_it_whole(
    app, mail, ext, add_account, make_smtp_server
):
    ext.update_settings(save_logs=True, log_level=4)
    servers = [make_smtp_server(), make_smtp_server()]
    accounts = [
        add_account(server, sender_email=sender).id for server, sender in zip(servers, SENDERS, strict=True)
    ]
    sent: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(THREADS)

    def newsletter(worker: int) -> None:
        try:
            with app.app_context():
                start.wait()
                with mail.connect() as conn:
                    for n in range(LETTERS):
                        message = Message(
                            f"Issue {worker}-{n}",
                            sender=SENDERS[n % 2],
                            recipients=[f"reader{n}@example.org"],
                            body="News.",
                        )
                        conn.send(message)
                        with lock:
                            sent.append(message.msgId)
        except BaseException as err:  # noqa: BLE001 - reported by the assert below
            errors.append(err)

    threads = [threading.Thread(target=newsletter, args=(w,)) for w in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert errors == []
    total = THREADS * LETTERS
    received = servers[0].wait_for(total // 2, timeout=30) + servers[1].wait_for(total // 2, timeout=30)
    counts = Counter(r.message["Message-ID"] for r in received)
    assert len(counts) == total and set(counts.values()) == {1}
    assert set(counts) == set(sent)
    assert ext.messages().total == total
    assert ext.messages(status="sent").total == total

    for account_id, server in zip(accounts, servers, strict=True):
        text = ext.read_log(account_id, "send", 0, 1 << 30).text
        header, _, body = text.partition("\n")
        assert header.startswith("#smtp-accounts-log kind=send")
        entries = [e for e in body.split("\n\n") if e.strip()]
        logged = []
        for entry in entries:
            head, *lines = entry.split("\n")
            match = ENTRY_HEAD.match(head)
            assert match, f"not a whole entry: {entry[:200]!r}"
            assert int(match.group(1)) == account_id and match.group(3) == "sent"
            data_ids = [
                line[len("D: Message-ID: ") :] for line in lines if line.startswith("D: Message-ID: ")
            ]
            assert data_ids == [match.group(2)], f"entry {match.group(2)} holds the data of {data_ids}"
            logged.append(match.group(2))
        assert sorted(logged) == sorted(r.message["Message-ID"] for r in server.received)


def resident_mb() -> float:
    """This process's resident memory now (Linux), in MB."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def test_a_long_loop_in_one_block_keeps_memory_bounded(app, mail, ext, add_account, smtp_server):
    """A long block keeps no letter: after a warm-up, 5,000 more letters grow memory by < 1 KB each."""
    app.extensions["mail"].suppress = True
    add_account(smtp_server, sender_email="one@example.com")

    def send(conn, numbers):
        for n in numbers:
            conn.send(
                Message(
                    f"Issue {n}", sender="one@example.com", recipients=[f"r{n}@example.org"], body="News."
                )
            )

    with mail.connect() as conn:
        # The first letters fill what is built once (compiled statements, pools, caches).
        send(conn, range(200))
        gc.collect()
        before = resident_mb()
        send(conn, range(200, 5_200))
        grown = resident_mb() - before
    print(f"5,000 letters in one block after a warm-up: resident memory grew by {grown:.1f} MB")
    assert grown < 5
    assert ext.messages(status="suppressed").total == 5_200
