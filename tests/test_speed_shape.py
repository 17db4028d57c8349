"""The shape of routing's cost, without a clock.

* Statements are counted with a ``before_cursor_execute`` listener: inside
  one ``mail.connect()`` block, once the accounts are known, their number
  does not grow with the number of letters.
* The candidate lookup (the very SQL routing issues, captured from the
  engine) is planned on the email index, never a scan of the table, and the
  work SQLite does for it (virtual machine steps, counted by a progress
  handler) is about the same with 100,000 accounts as with 10.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from flask_mail import Message

from flask_smtp_accounts.testing import SMTPServer


@dataclass
class Statement:
    sql: str
    parameters: Any
    many: bool


@pytest.fixture
def statements(db) -> Iterator[list[Statement]]:
    """Every statement the site's engine sends, in order."""
    seen: list[Statement] = []

    def record(conn: Any, cursor: Any, sql: str, parameters: Any, context: Any, executemany: bool) -> None:
        seen.append(Statement(sql, parameters, executemany))

    sa.event.listen(db.engine, "before_cursor_execute", record)
    yield seen
    sa.event.remove(db.engine, "before_cursor_execute", record)


def letter(sender: str, n: int) -> Message:
    return Message(f"letter {n}", sender=sender, recipients=["bob@example.org"], body="Hello.")


def send_block(mail: Any, letters: int) -> None:
    """One block: ``letters`` letters to each of two accounts and to an address without one."""
    with mail.connect() as conn:
        for n in range(letters):
            conn.send(letter("one@example.com", n))
            conn.send(letter("Two <TWO@example.com>", n))
            conn.send(letter("nobody@example.com", n))


def touches_accounts(statement: Statement) -> bool:
    return "smtp_accounts_account" in statement.sql


@pytest.fixture
def two_accounts(add_account, make_smtp_server) -> list[SMTPServer]:
    servers = [make_smtp_server(), make_smtp_server()]
    add_account(servers[0], sender_email="one@example.com")
    add_account(servers[1], sender_email="two@example.com")
    return servers


def test_statements_in_a_block_grow_only_by_each_letters_row(mail, two_accounts, smtp_server, statements):
    send_block(mail, 1)  # the accounts become known
    counts = {}
    for letters in (3, 30):
        statements.clear()
        send_block(mail, letters)
        rows = [s for s in statements if "smtp_accounts_message" in s.sql]
        assert (
            len(rows) == 2 * 3 * letters
        )  # per letter of each of the three senders: its INSERT ahead, its UPDATE after
        counts[letters] = len(statements) - len(rows)
        assert not any(touches_accounts(s) for s in statements), [
            s.sql for s in statements if touches_accounts(s)
        ]

    assert counts[3] == counts[30]
    for server in (*two_accounts, smtp_server):
        assert len(server.wait_for(34)) == 34


@pytest.fixture
def checkouts(db) -> Iterator[list[Any]]:
    """Every connection the site's engine hands out of its pool, in order."""
    seen: list[Any] = []

    def record(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        seen.append(record)

    sa.event.listen(db.engine, "checkout", record)
    yield seen
    sa.event.remove(db.engine, "checkout", record)


def test_a_block_takes_as_many_connections_from_the_pool_for_3_letters_as_for_30(
    mail, two_accounts, smtp_server, statements, checkouts
):
    send_block(mail, 1)  # the accounts become known
    counts = {}
    for letters in (3, 30):
        statements.clear()
        checkouts.clear()
        send_block(mail, letters)
        assert len([s for s in statements if "smtp_accounts_message" in s.sql]) == 2 * 3 * letters
        counts[letters] = len(checkouts)

    assert counts[3] == counts[30], counts  # each letter's two commits share the block's connection


def test_a_change_is_read_once_then_cached_again(ext, mail, two_accounts, statements):
    send_block(mail, 1)
    ext.update_settings(timeout_s=5)  # any change drops the cache of every process

    statements.clear()
    send_block(mail, 10)

    lookups = [s for s in statements if touches_accounts(s)]
    assert len(lookups) == 3  # once per From address of the block: two accounts and one without


def candidate_lookup(mail: Any, statements: list[Statement]) -> Statement:
    """The SQL routing sends to find the candidates of an address, as captured from the engine."""
    statements.clear()
    with mail.connect() as conn:
        conn.send(letter("one@example.com", 0))
    [lookup] = [s for s in statements if touches_accounts(s)]
    assert "email_key" in lookup.sql
    return lookup


def plan(db: Any, lookup: Statement) -> str:
    with db.engine.connect() as conn:
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + lookup.sql, lookup.parameters).all()
    return "\n".join(row[-1] for row in rows)


def vm_steps(db: Any, lookup: Statement) -> int:
    """How many virtual machine steps SQLite takes to answer the lookup (deterministic)."""
    raw = db.engine.raw_connection()
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    try:
        sqlite = raw.driver_connection
        sqlite.set_progress_handler(count, 1)
        try:
            rows = sqlite.execute(lookup.sql, lookup.parameters).fetchall()
        finally:
            sqlite.set_progress_handler(None, 1)
    finally:
        raw.close()
    assert len(rows) == 1
    return steps


def add_many_accounts(db: Any, ext: Any, count: int) -> None:
    """Bulk rows for other addresses, written with Core (the column defaults apply)."""
    table = ext.Account.__table__
    rows = [
        {
            "sender_email": f"user{n}@bulk.example",
            "email_key": f"user{n}@bulk.example",
            "host": "smtp.bulk.example",
            "port": 587,
            "security": "starttls",
            "auth": "none",
            "login": "",
            "sender_name": "",
            "active": True,
            "verify_tls": True,
        }
        for n in range(count)
    ]
    with db.engine.begin() as conn:
        conn.execute(table.insert(), rows)
        conn.exec_driver_sql("ANALYZE")


@pytest.mark.sqlite_only
def test_the_candidate_lookup_uses_the_email_index(db, ext, mail, two_accounts, statements):
    lookup = candidate_lookup(mail, statements)

    query_plan = plan(db, lookup)

    assert (
        "USING INDEX ix_smtp_accounts_account_email_key" in query_plan
        or "USING COVERING INDEX ix_smtp_accounts_account_email_key" in query_plan
    ), query_plan
    assert "SCAN smtp_accounts_account" not in query_plan, query_plan


@pytest.mark.sqlite_only
def test_the_lookup_costs_the_same_with_100000_accounts_as_with_10(db, ext, mail, two_accounts, statements):
    lookup = candidate_lookup(mail, statements)
    add_many_accounts(db, ext, 8)
    small = vm_steps(db, lookup)

    add_many_accounts(db, ext, 100_000)
    large = vm_steps(db, lookup)
    query_plan = plan(db, lookup)

    print(f"\ncandidate lookup: {small} SQLite VM steps with 10 accounts, {large} with 100,010")
    assert "SCAN smtp_accounts_account" not in query_plan, query_plan
    assert large <= small * 2, (small, large)


@pytest.mark.sqlite_only
def test_a_table_scan_would_be_seen(db, ext, mail, two_accounts, statements):
    """The measure above can fail: the same lookup without its index costs in proportion to the table."""
    lookup = candidate_lookup(mail, statements)
    add_many_accounts(db, ext, 8)
    with db.engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX ix_smtp_accounts_account_email_key")
    small = vm_steps(db, lookup)
    add_many_accounts(db, ext, 10_000)

    assert "SCAN smtp_accounts_account" in plan(db, lookup)
    assert vm_steps(db, lookup) > small * 100


def test_a_letters_update_sets_only_what_its_attempt_changed(mail, two_accounts, statements):
    with mail.connect() as conn:
        conn.send(letter("one@example.com", 0))

    [insert, update] = [s for s in statements if "smtp_accounts_message" in s.sql]
    assert insert.sql.startswith("INSERT") and update.sql.startswith("UPDATE")
    assert "error_reply" not in insert.sql  # no error yet: the column keeps its NULL without a parameter
    set_clause = update.sql.split(" SET ", 1)[1].split(" WHERE ", 1)[0]
    for written_once in ("created_at", "sender", "recipients", "subject", "message_id", "options"):
        assert written_once not in set_clause, update.sql
    assert "status" in set_clause and "pending" in set_clause


def test_a_letter_is_rendered_once_even_when_its_route_names_the_sender(
    mail, add_account, smtp_server, monkeypatch
):
    add_account(smtp_server, sender_email="news@example.com", sender_name="Nouvelles d'été")
    renders: list[Message] = []
    as_bytes = Message.as_bytes

    def counted(message: Message) -> bytes:
        renders.append(message)
        return as_bytes(message)

    monkeypatch.setattr(Message, "as_bytes", counted)

    mail.send(letter("news@example.com", 0))

    [got] = smtp_server.wait_for(1)
    # The account's name, as the reader sees it.
    assert got.message["From"] == "Nouvelles d'été <news@example.com>"
    assert len(renders) == 1
