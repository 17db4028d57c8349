"""What differs between SQLite, PostgreSQL and MySQL/MariaDB: sizes, time precision, concurrent claims.

These pass on every database; each guards a default of one of them (MySQL's
64 KB BLOB and whole-second DATETIME, PostgreSQL's serialization failures).
Run them on another database with ``SMTP_ACCOUNTS_TEST_DATABASE_URL``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from apps import Site, dialect_name, make_site
from flask import current_app
from flask_mail import Message
from misbehaving import Refuse

from flask_smtp_accounts import models
from flask_smtp_accounts.models import utcnow
from flask_smtp_accounts.testing import Certs, SMTPServer

#: How long a test waits for another transaction to reach a lock.
LOCK_DEADLINE_S = 30


def letter(subject: str = "Order 1", **kw: Any) -> Message:
    return Message(subject, sender="shop@example.com", recipients=["ann@example.org"], body="Thanks.", **kw)


def message_table() -> sa.Table:
    return current_app.extensions["smtp_accounts"].models.Message.__table__


def make_due(ext: Any, db: Any) -> None:
    """Move every queued letter's next try to the past, as if time had passed."""
    table = message_table()
    with db.engine.begin() as conn:
        conn.execute(
            table.update()
            .where(table.c.status == "queued")
            .values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )


# --- sizes -------------------------------------------------------------------------------


def test_a_1_mb_letter_is_queued_then_sent_and_kept_whole(mail, ext, db, add_account, make_smtp_server):
    ext.update_settings(queue_undelivered=True, keep_bodies=True)
    server = make_smtp_server(handler_hooks=Refuse("DATA", "451 4.3.0 Try later", times=1))
    add_account(server, sender_email="shop@example.com")
    big = letter()
    big.attach("catalogue.bin", "application/octet-stream", bytes(range(256)) * 4096)  # 1 MB

    mail.send(big)
    [queued] = ext.messages().items
    assert queued.status == "queued"
    assert queued.body is not None and len(queued.body) > 1_300_000  # base64 of 1 MB, and the headers

    make_due(ext, db)
    assert ext.retry_queue().sent == 1
    [got] = server.wait_for(1)
    [sent] = ext.messages().items
    assert sent.status == "sent"
    assert sent.body == queued.body
    assert got.message.get_payload()[1].get_payload(decode=True) == bytes(range(256)) * 4096


# --- time to the microsecond --------------------------------------------------------------


def test_letters_of_one_second_are_listed_in_the_order_they_were_written(
    mail, ext, db, add_account, smtp_server
):
    add_account(smtp_server, sender_email="shop@example.com")
    for subject in ("first", "second"):
        mail.send(letter(subject))
    moments = {
        "first": datetime(2030, 1, 1, 12, 0, 0, 750000),
        "second": datetime(2030, 1, 1, 12, 0, 0, 250000),
    }
    table = message_table()
    with db.engine.begin() as conn:
        for subject, moment in moments.items():
            conn.execute(table.update().where(table.c.subject == subject).values(created_at=moment))

    assert [m.subject for m in ext.messages().items] == ["first", "second"]  # newest first
    assert [m.created_at for m in ext.messages().items] == [moments["first"], moments["second"]]
    assert [m.subject for m in ext.messages(since=datetime(2030, 1, 1, 12, 0, 0, 500000)).items] == ["first"]


def test_a_log_starts_over_when_its_account_changes_within_one_second(
    mail, ext, add_account, smtp_server, monkeypatch
):
    account = add_account(smtp_server, sender_email="shop@example.com")
    sent = []
    for name, microsecond in (("Before", 250000), ("After", 750000)):
        monkeypatch.setattr(models, "utcnow", lambda m=microsecond: datetime(2030, 1, 1, 12, 0, 0, m))
        ext.update_account(account.id, sender_name=name, check=False)
        sent.append(letter(name))
        mail.send(sent[-1])

    assert ext.get_account(account.id).updated_at == datetime(2030, 1, 1, 12, 0, 0, 750000)
    text = ext.read_log(account.id, "send", length=1 << 30).text
    assert sent[1].msgId in text
    assert sent[0].msgId not in text


# --- concurrent claims -----------------------------------------------------------------------


def blocked_on_a_lock(conn: sa.Connection) -> int:
    """How many other connections to this PostgreSQL database wait for a lock now."""
    query = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    count = int(conn.execute(sa.text(query)).scalar_one())
    conn.rollback()  # the next look takes a new snapshot of pg_stat_activity
    return count


@pytest.fixture
def isolated_site(
    tmp_path: Path, encryption_key: str, certs: Certs, smtp_server: SMTPServer
) -> Iterator[Callable[[str], Site]]:
    """``isolated_site(level)``: the test site with its engine's ``isolation_level`` set, inside its app context."""
    contexts = []

    def make(level: str) -> Site:
        site = make_site(
            tmp_path / "instance",
            SMTP_ACCOUNTS_ENCRYPTION_KEYS=encryption_key,
            SMTP_ACCOUNTS_CA_FILE=str(certs.ca_cert),
            MAIL_PORT=smtp_server.port,
            SQLALCHEMY_ENGINE_OPTIONS={"isolation_level": level},
        )
        contexts.append(site.app.app_context())
        contexts[-1].push()
        return site

    yield make
    for context in reversed(contexts):
        context.pop()


def retry_run_meeting(site: Site, change: sa.Executable) -> tuple[list[Any], list[BaseException]]:
    """Run ``ext.retry_queue()`` while another transaction holds ``change``, committed once the run waits for it.

    Returns the run's report (or none) and what it raised (or nothing).
    """
    reports: list[Any] = []
    errors: list[BaseException] = []

    def retry_run() -> None:
        with site.app.app_context():
            try:
                reports.append(site.ext.retry_queue())
            except BaseException as error:  # noqa: BLE001 - the test shows it
                errors.append(error)

    other_run = site.db.engine.connect()
    try:
        transaction = other_run.begin()
        other_run.execute(change)
        run = threading.Thread(target=retry_run)
        run.start()
        with site.db.engine.connect() as watcher:
            deadline = time.monotonic() + LOCK_DEADLINE_S
            while not blocked_on_a_lock(watcher):
                assert time.monotonic() < deadline, "the retry run never reached the row lock"
                time.sleep(0.01)
        transaction.commit()
        run.join(LOCK_DEADLINE_S)
    finally:
        other_run.close()
    return reports, errors


postgresql_only = pytest.mark.skipif(
    dialect_name() != "postgresql", reason="PostgreSQL's serialization failures"
)


@postgresql_only
@pytest.mark.parametrize("level", ["REPEATABLE READ", "SERIALIZABLE"])
def test_a_retry_run_skips_a_letter_another_run_is_claiming_without_waiting_for_it(
    isolated_site, make_smtp_server, level
):
    site = isolated_site(level)
    ext, db = site.ext, site.db
    ext.update_settings(queue_undelivered=True)
    server = make_smtp_server(handler_hooks=Refuse("DATA", "451 4.3.0 Try later", times=1))
    ext.add_account(
        check=False,
        sender_email="shop@example.com",
        host=server.host,
        port=server.port,
        security="none",
        auth="none",
    )
    site.mail.send(letter())
    [row] = ext.messages().items
    make_due(ext, db)
    table = message_table()
    other_run = db.engine.connect()
    try:
        transaction = other_run.begin()
        other_run.execute(table.update().where(table.c.id == row.id).values(status="sending"))
        # The claim skips the row the other run has locked (FOR UPDATE SKIP LOCKED): it returns at once.
        report = ext.retry_queue()
        transaction.commit()
    finally:
        other_run.close()
    assert (report.sent, report.failed) == (0, 0)
    assert len(server.received) == 0
    assert ext.get_message(row.id).status == "sending"


@postgresql_only
@pytest.mark.parametrize("level", ["REPEATABLE READ", "SERIALIZABLE"])
def test_a_retry_run_leaves_old_rows_another_run_is_pruning(isolated_site, level):
    site = isolated_site(level)
    ext, db = site.ext, site.db
    ext.update_settings(message_retention_days=30)
    table = message_table()
    for subject in ("old 1", "old 2"):
        site.mail.send(letter(subject))  # no account: through Flask-Mail's own server, ``smtp_server``
    with db.engine.begin() as conn:
        conn.execute(table.update().values(created_at=utcnow() - timedelta(days=31)))
    first = min(m.id for m in ext.messages().items)

    reports, errors = retry_run_meeting(site, table.delete().where(table.c.id == first))

    assert errors == []
    assert [r.pruned for r in reports] == [0]  # the other run holds the batch's rows: the next run prunes
    assert ext.retry_queue().pruned == 1
    assert ext.messages().total == 0
