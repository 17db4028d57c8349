"""Every letter has its message log row before it leaves; a row that cannot be written stops the letter.

The process killed here is a real one (``subprocess``, ``SIGKILL``) sending
a long ``mail.connect()`` block to a real SMTP server; the database that
refuses a write is the suite's real one (SQLite, PostgreSQL, MySQL) with a
trigger, or a SQLite file whose write lock the site's own session holds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa
from apps import stored_rows
from flask_mail import Message

from flask_smtp_accounts import MessageLogError, SMTPAccountsError

TESTS = Path(__file__).parent

SENDER = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from apps import make_site
    from flask_mail import Message

    site = make_site(__import__("pathlib").Path(sys.argv[2]), enabled=False, **json.loads(sys.argv[3]))
    with site.app.app_context(), site.mail.connect() as conn:
        for n in range(100_000):
            conn.send(Message(f"Letter {n}", sender="shop@example.com", recipients=["bob@example.org"], body="x"))
    """
)


def letter(subject: str = "Hi") -> Message:
    return Message(subject, sender="shop@example.com", recipients=["bob@example.org"], body="Hello.")


def test_a_sender_killed_mid_block_leaves_a_row_for_every_letter_a_server_received(
    site, add_account, make_smtp_server, encryption_key, smtp_server
):
    server = make_smtp_server()
    add_account(server, sender_email="shop@example.com")
    config = {"SMTP_ACCOUNTS_ENCRYPTION_KEYS": encryption_key, "MAIL_PORT": smtp_server.port}
    instance = Path(site.app.instance_path)
    child = subprocess.Popen([sys.executable, "-c", SENDER, str(TESTS), str(instance), json.dumps(config)])
    try:
        server.wait_for(60, timeout=60)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)

    received = {r.message["Message-ID"] for r in server.received}
    rows = {
        row["message_id"]: row["status"]
        for row in stored_rows(site.app, "SELECT message_id, status FROM smtp_accounts_message")
    }
    assert len(received) >= 60
    assert received - set(rows) == set(), "letters a server received without a row"
    assert set(rows.values()) <= {"sent", "sending"}


#: Why the database refuses a write, as its error will say.
REFUSAL = "the disk is full"

#: Per dialect, what makes the database refuse ``{statement}`` (``INSERT`` or ``UPDATE``) on the message log.
#: The trigger goes with the table when the test's tables are dropped; PostgreSQL's function stays, and
#: ``CREATE OR REPLACE`` lets the next test reuse it.
REFUSING_TRIGGER = {
    "sqlite": [
        "CREATE TRIGGER refuse_{name} BEFORE {statement} ON smtp_accounts_message"
        f" BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION refuse_{name}() RETURNS trigger LANGUAGE plpgsql"
        f" AS $$ BEGIN RAISE EXCEPTION '{REFUSAL}'; END $$",
        "CREATE TRIGGER refuse_{name} BEFORE {statement} ON smtp_accounts_message"
        " FOR EACH ROW EXECUTE FUNCTION refuse_{name}()",
    ],
    "mysql": [
        "CREATE TRIGGER refuse_{name} BEFORE {statement} ON smtp_accounts_message"
        f" FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '{REFUSAL}'"
    ],
}


def refuse_writes(db, statement: str) -> None:
    """Make the database refuse ``INSERT`` or ``UPDATE`` on the message log, as a full or broken one would."""
    with db.engine.begin() as conn:
        for sql in REFUSING_TRIGGER[conn.dialect.name]:
            conn.execute(sa.text(sql.format(name=statement.lower(), statement=statement)))


def test_a_letter_whose_row_cannot_be_written_is_not_sent_and_the_caller_hears_why(
    site, db, mail, ext, add_account, make_smtp_server
):
    server = make_smtp_server()
    add_account(server, sender_email="shop@example.com")
    refuse_writes(db, "INSERT")

    with pytest.raises(MessageLogError) as refused:
        mail.send(letter())

    assert isinstance(refused.value, SMTPAccountsError) and not refused.value.delivered
    assert "was not sent: its message log row could not be written" in str(refused.value)
    assert REFUSAL in str(refused.value)
    assert server.received == []


def test_a_letter_of_flask_mails_own_route_is_not_sent_either(site, db, mail, smtp_server):
    refuse_writes(db, "INSERT")

    with pytest.raises(MessageLogError):
        mail.send(Message("Hi", sender="nobody@example.net", recipients=["bob@example.org"], body="x"))

    assert smtp_server.received == []


def test_a_delivered_letter_whose_row_cannot_be_updated_says_it_was_delivered(
    site, db, mail, ext, add_account, make_smtp_server
):
    server = make_smtp_server()
    add_account(server, sender_email="shop@example.com")
    refuse_writes(db, "UPDATE")

    with pytest.raises(MessageLogError) as refused:
        mail.send(letter())

    assert refused.value.delivered and "was accepted by the server" in str(refused.value)
    [received] = server.wait_for(1)
    [row] = ext.messages().items
    assert (row.status, row.message_id) == ("sending", received.message["Message-ID"])


@pytest.mark.sqlite_only
def test_on_sqlite_a_letter_sent_inside_the_sites_own_write_says_so_at_once(
    site, db, mail, ext, add_account, make_smtp_server
):
    """SQLite has one writer: a row written beside the site's uncommitted write would wait for it, then fail."""
    server = make_smtp_server()
    account = add_account(server, sender_email="shop@example.com")
    db.session.get(ext.Account, account.id).sender_name = "Renamed"
    db.session.flush()  # the site's own transaction now holds SQLite's write lock

    with pytest.raises(MessageLogError) as refused:
        mail.send(letter())

    assert "commit (or roll back) before sending" in str(refused.value)
    assert server.received == []
    db.session.rollback()
    mail.send(letter())
    assert len(server.wait_for(1)) == 1
    assert [m.status for m in ext.messages().items] == ["sent"]


def test_an_interrupted_letter_reads_as_such_on_the_command_line_and_can_be_resent_there(
    site, db, mail, ext, add_account, make_smtp_server
):
    server = make_smtp_server()
    add_account(server, sender_email="shop@example.com")
    ext.update_settings(
        keep_bodies=True
    )  # an interrupted row holds its body, as every row does while sending
    mail.send(letter("Interrupted"))
    with db.engine.begin() as conn:  # what a process killed while sending leaves, once its lease ran out
        conn.execute(
            sa.text(
                "UPDATE smtp_accounts_message SET status = 'sending', pending = recipients, claimed_until = '2000-01-01 00:00:00'"
            )
        )
    runner = site.app.test_cli_runner()

    listed = runner.invoke(args=["smtp-accounts", "messages", "--status", "interrupted"])
    assert listed.exit_code == 0, listed.output
    assert "interrupted: outcome unknown" in listed.output and "Interrupted" in listed.output

    [row] = ext.messages().items
    resent = runner.invoke(args=["smtp-accounts", "resend", str(row.id)])
    assert resent.exit_code == 0, resent.output
    assert f"Message {row.id}: sent." in resent.output
    assert len(server.wait_for(2)) == 2
