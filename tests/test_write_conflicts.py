"""A drainer's write that the database gives up for a concurrent one (a deadlock) is run again.

Real row locks on the server databases: another transaction holds the next
letter's row and then asks for the row the drainer is updating, a true
deadlock. The other transaction has changed more rows, so the database
picks the drainer's as the victim (InnoDB rolls back the smaller one;
PostgreSQL the one whose deadlock check runs first, the one waiting longest).
"""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa
from apps import dialect_name, stored_rows
from test_outbox import queue_letters

from flask_smtp_accounts.models import utcnow

pytestmark = pytest.mark.skipif(
    dialect_name() == "sqlite", reason="SQLite has no row locks: this process's writers take turns"
)

#: How long the test waits for the drainer's write to queue behind the other transaction's lock.
LOCK_WAIT_DEADLINE_S = 30


def lock_waits(conn: sa.Connection) -> int:
    """The drainer's move to ``sending`` (the statement conditional on ``claimed_until``), waiting for a lock.

    Both servers show a user its own sessions without more privileges;
    MariaDB's list does not say what a statement waits for, and the move
    only runs that long when it waits.
    """
    if dialect_name() == "postgresql":
        query = (
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND query LIKE 'UPDATE smtp_accounts_message%.claimed_until = %'"
        )
    else:
        query = (
            "SELECT count(*) FROM information_schema.PROCESSLIST"
            " WHERE INFO LIKE 'UPDATE smtp_accounts_message%' AND INFO LIKE '%.claimed_until = %'"
        )
    return int(conn.execute(sa.text(query)).scalar_one())


def test_a_drainers_write_chosen_as_a_deadlocks_victim_is_run_again(
    app, db, mail, ext, add_account, make_smtp_server
):
    add_account(make_smtp_server(), sender_email="shop@example.com")
    queue_letters(ext, mail, 6)
    log = app.extensions["smtp_accounts"].message_log
    claim = log.claim(10)
    first, second, *others = claim.ids
    assert log.begin_sending(first, claim.until, claim=claim) is not None  # the letter being sent
    table = sa.table("smtp_accounts_message", sa.column("id"), sa.column("subject"))
    outcome: dict[str, object] = {}

    def settle_first_and_begin_second() -> None:
        with app.app_context():
            try:
                outcome["row"] = log.settle(
                    first,
                    {"status": "sent", "claimed_until": None, "updated_at": utcnow()},
                    message_id="first",
                    delivered=True,
                    then=(claim, second),
                )
            except Exception as error:  # noqa: BLE001 - asserted below
                outcome["error"] = error

    with app.app_context():
        engine = db.engine
    with engine.connect() as other, engine.connect() as watcher:
        with other.begin():
            for record_id in (second, *others):  # row by row: each statement locks its one row, no more
                other.execute(table.update().where(table.c.id == record_id).values(subject="touched"))
            drainer = threading.Thread(target=settle_first_and_begin_second)
            drainer.start()
            deadline = time.monotonic() + LOCK_WAIT_DEADLINE_S
            while not (queued := lock_waits(watcher)) and time.monotonic() < deadline:
                watcher.rollback()  # a fresh snapshot of the lock tables each time
                time.sleep(0.01)
            assert queued, "the drainer's write never queued behind the other transaction's lock"
            # The drainer holds the first row and waits for the second: asking for the first closes the cycle.
            other.execute(table.update().where(table.c.id == first).values(subject="touched"))
        drainer.join(LOCK_WAIT_DEADLINE_S)

    assert "error" not in outcome, outcome.get("error")
    assert outcome["row"] is not None and outcome["row"].status == "sending"
    statuses = {
        row["id"]: (row["status"], row["subject"])
        for row in stored_rows(app, "SELECT id, status, subject FROM smtp_accounts_message")
    }
    assert statuses[first] == ("sent", "touched") and statuses[second] == ("sending", "touched")
