"""``outbox(batch=N)``: a block's rows written N at a time, each group one transaction, the rest at its end.

Real SMTP servers (aiosmtpd), the suite's real database (SQLite, or
PostgreSQL / MariaDB by ``SMTP_ACCOUNTS_TEST_DATABASE_URL``); the rows are
read from another connection while the block runs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from apps import stored_rows
from flask_mail import Message
from test_write_ahead import REFUSAL, refuse_writes

from flask_smtp_accounts import (
    InvalidArgumentError,
    LettersNotStoredError,
    MessageLogError,
    letters_queued,
    message_queued,
)

TESTS = Path(__file__).parent

#: A fixed Date header, so that the same letters render to the same bytes in two blocks.
DATE = datetime(2030, 1, 1, 12, 0).timestamp()


def letter(
    subject: str, sender: str | tuple[str, str] = "shop@example.com", body: str = "Hello.", **kwargs
) -> Message:
    message = Message(subject, sender=sender, recipients=["bob@example.org"], body=body, date=DATE, **kwargs)
    message.msgId = (
        f"<{subject.encode('ascii', 'replace').decode().lower().replace(' ', '-')}@shop.example.com>"
    )
    return message


def stored(app) -> list[dict]:
    return stored_rows(app, "SELECT * FROM smtp_accounts_message ORDER BY id")


def count_stored(app) -> int:
    return len(stored_rows(app, "SELECT id FROM smtp_accounts_message"))


def store_mixed_letters(ext, mail, batch: int) -> None:
    """Seven letters of every kind a row tells apart, through ``mail.send`` and a ``mail.connect()`` block."""
    with ext.outbox(batch=batch):
        mail.send(letter("Plain"))
        mail.send(letter("Own route", sender="nobody@example.net"))  # no account: Flask-Mail's route
        with mail.connect() as conn:
            conn.send(
                letter("Tuple sender", sender=("Shop", "shop@example.com"), reply_to="help@example.com")
            )
            conn.send(letter("Bounces", cc=["carol@example.org"]), envelope_from="bounce@example.com")
        mail.send(letter("Bulk", extra_headers={"List-Unsubscribe": "<mailto:off@example.com>"}))
        mail.send(letter("Options", mail_options=["BODY=8BITMIME"]))
        mail.send(letter("Ünïcode subject"))


TIMES = ("created_at", "updated_at", "next_attempt_at")


def test_rows_stored_in_batches_equal_the_rows_stored_one_by_one_in_order_and_arrive_once(
    app, mail, ext, add_account, make_smtp_server, smtp_server
):
    server = make_smtp_server()
    add_account(server, sender_email="shop@example.com")

    store_mixed_letters(ext, mail, batch=1)
    store_mixed_letters(ext, mail, batch=4)  # a group of 4, then 3 when the block ends

    rows = stored(app)
    one_by_one, batched = rows[:7], rows[7:]
    assert [r["subject"] for r in batched] == [r["subject"] for r in one_by_one]
    for single, grouped in zip(one_by_one, batched, strict=True):
        for row in (single, grouped):
            assert row["created_at"] == row["updated_at"] == row["next_attempt_at"] is not None
        columns = set(single) - {"id", *TIMES}
        assert {c: grouped[c] for c in columns} == {c: single[c] for c in columns}
    assert batched[1]["chosen_account_id"] is None and batched[0]["chosen_account_id"] is not None
    assert [r["message_id"] for r in batched] == [
        "<plain@shop.example.com>",
        "<own-route@shop.example.com>",
        "<tuple-sender@shop.example.com>",
        "<bounces@shop.example.com>",
        "<bulk@shop.example.com>",
        "<options@shop.example.com>",
        "<?n?code-subject@shop.example.com>",
    ]

    ext.cancel_queued(ids=[r["id"] for r in one_by_one])
    report = ext.deliver_queued(connections=2)

    assert (report.sent, report.failed, report.left) == (7, 0, 0)
    arrived = Counter(r.message_id for r in server.wait_for(6) + smtp_server.wait_for(1))
    assert arrived == Counter({r["message_id"]: 1 for r in batched})


def count_inserts(engine: sa.Engine) -> list[str]:
    """The INSERTs into the message log that ``engine`` sends from now on (a list that grows)."""
    inserts: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO SMTP_ACCOUNTS_MESSAGE"):
            inserts.append(statement)

    sa.event.listen(engine, "before_cursor_execute", seen)
    return inserts


def test_a_group_is_written_when_full_and_the_rest_when_the_block_ends(
    app, db, mail, ext, add_account, make_smtp_server
):
    """The group spans every ``mail.send`` and ``mail.connect()`` of the block; another connection sees whole groups."""
    add_account(make_smtp_server(), sender_email="shop@example.com")
    inserts = count_inserts(db.engine)
    seen = []
    with ext.outbox(batch=3):
        for n in range(2):
            mail.send(letter(f"Letter {n}"))
            seen.append(count_stored(app))
        with mail.connect() as conn:
            for n in range(2, 4):
                conn.send(letter(f"Letter {n}"))
                seen.append(count_stored(app))
        for n in range(4, 7):
            mail.send(letter(f"Letter {n}"))
            seen.append(count_stored(app))
        assert seen == [0, 0, 3, 3, 3, 6, 6]

    assert [r["subject"] for r in stored(app)] == [f"Letter {n}" for n in range(7)]
    # One INSERT a group; SQLite has no multi-row INSERT that returns ids in order: one a row, in the group's transaction.
    assert len(inserts) == (7 if db.engine.dialect.name == "sqlite" else 3)


def test_letters_handed_over_are_stored_when_the_block_ends_by_an_exception_which_propagates(
    app, mail, ext, add_account, make_smtp_server
):
    add_account(make_smtp_server(), sender_email="shop@example.com")
    announced = []
    with letters_queued.connected_to(lambda sender, ids: announced.append(ids), app):
        with pytest.raises(RuntimeError, match="the job broke"), ext.outbox(batch=10):
            for n in range(3):
                mail.send(letter(f"Letter {n}"))
            raise RuntimeError("the job broke")

    rows = stored(app)
    assert [(r["subject"], r["status"]) for r in rows] == [(f"Letter {n}", "queued") for n in range(3)]
    assert announced == [[r["id"] for r in rows]]


@pytest.mark.parametrize("bad", [0, -1, 10_001, True, 2.0, "500", None])
def test_a_batch_that_is_no_whole_number_from_1_to_10000_is_refused_before_anything_is_stored(
    app, mail, ext, add_account, make_smtp_server, bad
):
    server = make_smtp_server()
    add_account(server, sender_email="shop@example.com")

    with pytest.raises(InvalidArgumentError, match="batch"), ext.outbox(batch=bad):
        mail.send(letter("Never"))

    assert stored(app) == [] and server.received == []


@pytest.mark.parametrize("batch", [1, 10_000])
def test_the_ends_of_the_batch_range_are_taken(app, mail, ext, add_account, make_smtp_server, batch):
    add_account(make_smtp_server(), sender_email="shop@example.com")
    with ext.outbox(batch=batch):
        mail.send(letter("Stored"))
        kept = count_stored(app)

    assert kept == (1 if batch == 1 else 0)
    assert [r["status"] for r in stored(app)] == ["queued"]


def test_each_letter_is_announced_when_its_row_is_written_and_each_group_as_it_is_committed(
    app, mail, ext, add_account, make_smtp_server
):
    add_account(make_smtp_server(), sender_email="shop@example.com")
    queued = []
    groups = []
    with (
        message_queued.connected_to(
            lambda s, **kw: queued.append((kw["message"].subject, kw["record_id"])), app
        ),
        letters_queued.connected_to(lambda s, ids: groups.append((ids, count_stored(app))), app),
    ):
        with ext.outbox(batch=3):
            for n in range(4):
                mail.send(letter(f"Letter {n}"))
                if n == 1:
                    assert queued == [] and groups == []
            # The first group is handed to workers while the block goes on, its rows already committed.
            assert len(queued) == 3 and len(groups) == 1

    ids = [r["id"] for r in stored(app)]
    assert queued == [(f"Letter {n}", ids[n]) for n in range(4)]
    assert groups == [(ids[:3], 3), (ids[3:], 4)]


def refuse_subject(db, subject: str) -> None:
    """Make the database refuse a message log row with this subject (and only such a row)."""
    statements = {
        "sqlite": [
            f"CREATE TRIGGER refuse_subject BEFORE INSERT ON smtp_accounts_message WHEN NEW.subject = '{subject}'"
            f" BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
        ],
        "postgresql": [
            "CREATE OR REPLACE FUNCTION refuse_subject() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            f" IF NEW.subject = '{subject}' THEN RAISE EXCEPTION '{REFUSAL}'; END IF; RETURN NEW; END $$",
            "CREATE TRIGGER refuse_subject BEFORE INSERT ON smtp_accounts_message"
            " FOR EACH ROW EXECUTE FUNCTION refuse_subject()",
        ],
        "mysql": [
            "CREATE TRIGGER refuse_subject BEFORE INSERT ON smtp_accounts_message FOR EACH ROW BEGIN"
            f" IF NEW.subject = '{subject}' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '{REFUSAL}'; END IF; END"
        ],
    }
    with db.engine.begin() as conn:
        for sql in statements[conn.dialect.name]:
            conn.execute(sa.text(sql))


def stop_refusing(db) -> None:
    with db.engine.begin() as conn:
        on = " ON smtp_accounts_message" if conn.dialect.name == "postgresql" else ""
        conn.execute(sa.text(f"DROP TRIGGER refuse_subject{on}"))


def test_a_group_the_database_refuses_is_named_whole_and_stored_not_at_all_the_rest_stays_and_arrives_once(
    app, db, mail, ext, add_account, make_smtp_server
):
    server = make_smtp_server()
    add_account(server, sender_email="shop@example.com")
    sent = {name: letter(name) for name in ("A", "B", "C", "D", "Refused", "F", "G")}
    refuse_subject(db, "Refused")

    with ext.outbox(batch=3):
        for name in ("A", "B", "C", "D", "Refused"):
            mail.send(sent[name])
        with pytest.raises(LettersNotStoredError) as refused:
            mail.send(sent["F"])  # fills the group D, Refused, F
        assert [r["subject"] for r in stored(app)] == ["A", "B", "C"]
        mail.send(sent["G"])  # the block goes on: G is written when it ends

    error = refused.value
    assert isinstance(error, MessageLogError) and not error.delivered
    assert error.message_ids == tuple(sent[name].msgId for name in ("D", "Refused", "F"))
    assert str(error).startswith(
        "3 letter(s) of the outbox block were not stored, none of their group:"
        " <d@shop.example.com>, <refused@shop.example.com>, <f@shop.example.com>; send them again"
    )
    assert REFUSAL in str(error)
    assert [r["subject"] for r in stored(app)] == ["A", "B", "C", "G"]

    stop_refusing(db)
    by_id = {message.msgId: message for message in sent.values()}
    with ext.outbox(batch=3):
        for message_id in error.message_ids:
            mail.send(by_id[message_id])
    report = ext.deliver_queued(connections=4)

    assert (report.sent, report.left) == (7, 0)
    assert Counter(r.message_id for r in server.wait_for(7)) == {m.msgId: 1 for m in sent.values()}


def test_when_the_last_group_cannot_be_written_as_the_block_ends_by_an_exception_the_caller_hears_both(
    app, db, mail, ext, add_account, make_smtp_server
):
    add_account(make_smtp_server(), sender_email="shop@example.com")
    announced = []
    with letters_queued.connected_to(lambda sender, ids: announced.append(ids), app):
        with pytest.raises(LettersNotStoredError) as refused, ext.outbox(batch=10):
            mail.send(letter("A"))
            refuse_writes(db, "INSERT")
            mail.send(letter("B"))
            raise RuntimeError("the job broke")

    assert refused.value.message_ids == ("<a@shop.example.com>", "<b@shop.example.com>")
    assert refused.value.__notes__ == ["The outbox block was ending by RuntimeError: the job broke"]
    assert stored(app) == [] and announced == []


@pytest.mark.sqlite_only
def test_on_sqlite_a_group_written_inside_the_sites_own_write_says_so_at_once(
    app, db, mail, ext, add_account, make_smtp_server
):
    account = add_account(make_smtp_server(), sender_email="shop@example.com")
    db.session.get(ext.Account, account.id).sender_name = "Renamed"
    db.session.flush()  # the site's own transaction now holds SQLite's write lock

    with ext.outbox(batch=2):
        mail.send(letter("A"))
        with pytest.raises(LettersNotStoredError) as refused:
            mail.send(letter("B"))

    assert "commit (or roll back) before sending" in str(refused.value)
    assert refused.value.message_ids == ("<a@shop.example.com>", "<b@shop.example.com>")
    db.session.rollback()
    assert stored(app) == []


def test_with_sending_suppressed_letters_are_logged_suppressed_at_once_not_kept(
    app, mail, ext, add_account, make_smtp_server
):
    add_account(make_smtp_server(), sender_email="shop@example.com")
    app.extensions["mail"].suppress = True  # MAIL_SUPPRESS_SEND, as under TESTING
    announced = []
    with letters_queued.connected_to(lambda sender, ids: announced.append(ids), app):
        with ext.outbox(batch=5):
            mail.send(letter("A"))
            mail.send(letter("B", sender="nobody@example.net"))
            assert count_stored(app) == 2

    assert [r["status"] for r in stored(app)] == ["suppressed", "suppressed"]
    assert announced == []


def test_a_nested_block_keeps_its_own_batch_and_the_ids_their_order(
    app, mail, ext, add_account, make_smtp_server
):
    add_account(make_smtp_server(), sender_email="shop@example.com")
    announced = []
    seen = []
    with letters_queued.connected_to(lambda sender, ids: announced.append(ids), app):
        with ext.outbox(batch=3):
            mail.send(letter("A"))
            seen.append(count_stored(app))
            with ext.outbox():  # batch=1: each letter committed before its send returns
                seen.append(count_stored(app))  # the outer block's kept letter was written first
                mail.send(letter("B"))
                seen.append(count_stored(app))
            mail.send(letter("C"))
            with ext.outbox(batch=5):
                mail.send(letter("D"))
                seen.append(count_stored(app))
            seen.append(count_stored(app))  # the inner block wrote D when it ended
            mail.send(letter("E"))
            seen.append(count_stored(app))

    rows = stored(app)
    assert seen == [0, 1, 2, 3, 4, 4]
    ids = {r["subject"]: r["id"] for r in rows}
    assert list(ids) == ["A", "B", "C", "D", "E"]
    # Each group as it is written (A before the first inner block, C before the second, D as it ends, E
    # as the outer block ends); B, committed on its own, with the outermost block's end. Each id once.
    assert announced == [[ids["A"]], [ids["C"]], [ids["D"]], [ids["E"]], [ids["B"]]]


def test_outside_a_block_the_outbox_all_setting_still_stores_each_letter_at_once(
    app, mail, ext, add_account, make_smtp_server
):
    add_account(make_smtp_server(), sender_email="shop@example.com")
    ext.update_settings(outbox_all=True)
    announced = []
    with letters_queued.connected_to(lambda sender, ids: announced.append(ids), app):
        for name in ("A", "B"):
            mail.send(letter(name))
            assert count_stored(app) == len(announced)

    assert announced == [[r["id"]] for r in stored(app)]


STORER = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from apps import make_site
    from flask_mail import Message

    site = make_site(__import__("pathlib").Path(sys.argv[2]), enabled=False, **json.loads(sys.argv[3]))
    with site.app.app_context(), site.ext.outbox(batch=50):
        for n in range(100_000):
            site.mail.send(Message(f"Letter {n}", sender="shop@example.com", recipients=["bob@example.org"], body="x"))
            print(n, flush=True)  # mail.send returned for letter n
    """
)


def test_a_process_killed_inside_a_batched_block_leaves_whole_groups_and_loses_fewer_letters_than_a_batch(
    app, add_account, make_smtp_server, encryption_key, smtp_server
):
    """What ``batch`` trades: the letters ``mail.send`` returned for since the last group are lost, never half a group."""
    add_account(make_smtp_server(), sender_email="shop@example.com")
    config = {"SMTP_ACCOUNTS_ENCRYPTION_KEYS": encryption_key, "MAIL_PORT": smtp_server.port}
    instance = Path(app.instance_path)
    child = subprocess.Popen(
        [sys.executable, "-c", STORER, str(TESTS), str(instance), json.dumps(config)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while count_stored(app) < 180 and time.monotonic() < deadline:  # mid-group, if rows came one by one
            time.sleep(0.02)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        returned = len(child.communicate(timeout=30)[0].splitlines())

    rows = stored(app)
    assert len(rows) >= 180 and len(rows) % 50 == 0
    assert [r["subject"] for r in rows] == [f"Letter {n}" for n in range(len(rows))]
    assert {r["status"] for r in rows} == {"queued"} and all(r["body"] for r in rows)
    assert -1 <= returned - len(rows) <= 49  # -1: killed after a group's commit, before its send returned


def test_a_group_larger_than_a_statement_may_be_is_stored_whole(
    app, mail, ext, add_account, make_smtp_server
):
    """MySQL and MariaDB refuse a statement past ``max_allowed_packet`` (16 MB by default): 60 letters of 300 kB."""
    add_account(make_smtp_server(), sender_email="shop@example.com")
    text = "A long newsletter line.\n" * 12_500
    with ext.outbox(batch=60):
        for n in range(60):
            mail.send(letter(f"Letter {n}", body=text))

    rows = stored_rows(app, "SELECT subject, size FROM smtp_accounts_message ORDER BY id")
    assert [r["subject"] for r in rows] == [f"Letter {n}" for n in range(60)]
    assert all(r["size"] > 300_000 for r in rows)
