"""Sending limits per account (issue 13, item 4): held across real processes, windows that slide, what a letter does at a limit.

Windows are shown sliding by moving the usage rows' times into the past,
as the clock would; nothing sleeps and nothing reads the wall clock.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask_mail import Message

from flask_smtp_accounts import InvalidAccountError, QuotaExceededError, quota_reached
from flask_smtp_accounts.testing import ClosingServer

TESTS = Path(__file__).parent

#: A process of the same site that sends ``count`` letters as soon as it reads "go".
WORKER = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from apps import make_site
    from flask_mail import Message

    site = make_site(__import__("pathlib").Path(sys.argv[2]), enabled=False, **json.loads(sys.argv[3]))
    name, count = sys.argv[4], int(sys.argv[5])
    with site.app.app_context():
        print("ready", flush=True)
        sys.stdin.readline()
        for n in range(count):
            message = Message(f"{name}-{n}", sender="shop@example.com", recipients=["bob@example.org"], body="x")
            site.mail.send(message)
        print("done", flush=True)
        site.db.session.remove()
        site.db.engine.dispose()
    """
)


def letter(subject: str, *recipients: str) -> Message:
    return Message(
        subject, sender="shop@example.com", recipients=list(recipients or ["bob@example.org"]), body="x"
    )


def usage_table(ext: Any) -> sa.Table:
    return ext._state.models.QuotaUsage.__table__


def usage_times(ext: Any, column: str = "used_at") -> list[Any]:
    """When each counted letter reached its server (or, ``reserved_at``, took its slot), earliest first."""
    table = usage_table(ext)
    with ext._state.engine().connect() as conn:
        return list(conn.execute(sa.select(table.c[column]).order_by(table.c[column])).scalars())


def move_usage_back(ext: Any, by: timedelta, *, oldest: int | None = None) -> None:
    """Move the usage rows' times (all, or the ``oldest`` few) into the past, as time passing would."""
    table = usage_table(ext)
    with ext._state.engine().begin() as conn:
        query = sa.select(table.c.id).order_by(table.c.used_at, table.c.id)
        ids = list(conn.execute(query if oldest is None else query.limit(oldest)).scalars())
        for key in ids:
            row = conn.execute(sa.select(table.c.used_at).where(table.c.id == key)).scalar_one()
            conn.execute(table.update().where(table.c.id == key).values(used_at=row - by))


def subjects(server: Any) -> list[str]:
    return [r.message["Subject"] for r in server.received]


def test_four_processes_through_one_account_send_five_letters_a_minute_and_queue_the_rest(
    site, ext, add_account, make_smtp_server, tmp_path, encryption_key, certs, smtp_server
):
    server = make_smtp_server()
    add_account(server, sender_email="shop@example.com", limit_per_minute=5)
    ext.update_settings(queue_undelivered=True)
    config = {
        "SMTP_ACCOUNTS_ENCRYPTION_KEYS": encryption_key,
        "SMTP_ACCOUNTS_CA_FILE": str(certs.ca_cert),
        "MAIL_PORT": smtp_server.port,
    }
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                str(script),
                str(TESTS),
                site.app.instance_path,
                json.dumps(config),
                f"w{n}",
                "3",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
        for worker in workers:  # all at once
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        answers = [worker.communicate(timeout=120)[0].strip() for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    assert answers == ["done"] * 4
    assert [worker.returncode for worker in workers] == [0] * 4

    assert len(server.received) == 5
    statuses = sorted(m.status for m in ext.messages().items)
    assert statuses == ["queued"] * 7 + ["sent"] * 5
    first = usage_times(ext, "reserved_at")[0]
    queued = ext.messages(status="queued").items
    assert all(m.next_attempt_at >= first + timedelta(seconds=60) for m in queued)
    assert {(m.attempts, m.error_stage) for m in queued} == {(0, "quota")}
    assert sorted(subjects(server)) == sorted(m.subject for m in ext.messages(status="sent").items)


def test_when_the_minute_has_passed_the_retry_run_sends_five_more_and_the_waits_count_no_try(
    ext, mail, add_account, make_smtp_server
):
    server = make_smtp_server()
    add_account(server, sender_email="shop@example.com", limit_per_minute=5)
    ext.update_settings(queue_undelivered=True, max_attempts=1)
    for n in range(12):
        mail.send(letter(f"n{n}"))
    assert len(server.received) == 5

    move_usage_back(ext, timedelta(seconds=61))
    table = ext._state.models.Message.__table__
    with ext._state.engine().begin() as conn:  # the queued letters' slot has come
        conn.execute(
            table.update().where(table.c.status == "queued").values(next_attempt_at=usage_times(ext)[0])
        )
    report = ext.retry_queue()

    assert (report.sent, report.requeued, report.failed) == (5, 2, 0)
    assert len(server.received) == 10
    assert [m.attempts for m in ext.messages(status="queued").items] == [0, 0]


def test_an_hour_window_slides(ext, mail, add_account, make_smtp_server):
    server = make_smtp_server()
    add_account(server, sender_email="shop@example.com", limit_per_hour=3)
    for n in range(3):
        mail.send(letter(f"n{n}"))
    with pytest.raises(QuotaExceededError) as full:
        mail.send(letter("n3"))
    assert full.value.limit == "limit_per_hour"
    assert full.value.retry_at == usage_times(ext)[0] + timedelta(hours=1)

    move_usage_back(
        ext, timedelta(minutes=59), oldest=1
    )  # 59 minutes on, the first letter is still in the hour
    with pytest.raises(QuotaExceededError):
        mail.send(letter("n4"))
    move_usage_back(ext, timedelta(minutes=1, seconds=1), oldest=1)  # now it has left it
    mail.send(letter("n5"))
    with pytest.raises(QuotaExceededError):
        mail.send(letter("n6"))

    assert subjects(server) == ["n0", "n1", "n2", "n5"]


def test_a_day_window_is_a_rolling_24_hours(ext, mail, add_account, make_smtp_server):
    server = make_smtp_server()
    add_account(server, sender_email="shop@example.com", limit_per_day=2)
    mail.send(letter("n0"))
    mail.send(letter("n1"))
    with pytest.raises(QuotaExceededError) as full:
        mail.send(letter("n2"))
    assert "reached its limit of 2 letters a day; next slot at" in str(full.value)

    move_usage_back(ext, timedelta(hours=23, minutes=59))  # a calendar day may have turned; 24 hours have not
    with pytest.raises(QuotaExceededError):
        mail.send(letter("n3"))
    move_usage_back(ext, timedelta(minutes=1, seconds=1), oldest=1)
    mail.send(letter("n4"))

    assert subjects(server) == ["n0", "n1", "n4"]


def test_recipients_a_day_count_envelope_recipients(ext, mail, add_account, make_smtp_server):
    server = make_smtp_server()
    add_account(server, sender_email="shop@example.com", recipient_limit_per_day=5)
    mail.send(letter("three", "a@example.org", "b@example.org", "c@example.org"))
    with pytest.raises(QuotaExceededError) as full:
        mail.send(letter("three more", "d@example.org", "e@example.org", "f@example.org"))
    assert (full.value.limit, full.value.allowed) == ("recipient_limit_per_day", 5)
    assert full.value.retry_at == usage_times(ext)[0] + timedelta(days=1)
    mail.send(letter("two", "d@example.org", "e@example.org"))
    with pytest.raises(QuotaExceededError):
        mail.send(letter("one", "f@example.org"))

    move_usage_back(ext, timedelta(days=1), oldest=1)  # the three of the first letter have left the day
    mail.send(letter("three again", "f@example.org", "g@example.org", "h@example.org"))
    with pytest.raises(QuotaExceededError) as never:
        mail.send(letter("six", *(f"r{n}@example.org" for n in range(6))))

    assert never.value.retry_at is None and not never.value.temporary
    assert subjects(server) == ["three", "two", "three again"]
    assert [len(r.rcpt_tos) for r in server.received] == [3, 2, 3]


def test_at_its_limit_an_account_hands_the_letter_to_its_backup(ext, mail, add_account, make_smtp_server):
    main, backup = make_smtp_server(), make_smtp_server()
    spare = add_account(backup, sender_email="shop@example.com")
    chosen = add_account(
        main, sender_email="shop@example.com", limit_per_minute=2, over_limit="backups", backup_ids=[spare.id]
    )
    for n in range(4):
        mail.send(letter(f"n{n}"))

    assert (subjects(main), subjects(backup)) == (["n0", "n1"], ["n2", "n3"])
    assert [m.account_id for m in ext.messages().items] == [spare.id, spare.id, chosen.id, chosen.id]


@pytest.mark.parametrize(("over_limit", "through_backup"), [("wait", 0), ("backups", 1)])
def test_a_queued_letter_at_a_limit_waits_for_its_slot_or_goes_through_the_backup_as_the_account_says(
    ext, mail, add_account, make_smtp_server, over_limit, through_backup
):
    main, backup = make_smtp_server(), make_smtp_server()
    spare = add_account(backup, sender_email="shop@example.com", active=False)
    chosen = add_account(main, sender_email="shop@example.com", limit_per_minute=1, backup_ids=[spare.id])
    ext.update_settings(queue_undelivered=True)
    mail.send(letter("first"))
    mail.send(letter("second"))  # the account is full and its one backup is off: queued
    (waiting,) = ext.messages(status="queued").items
    ext.update_account(spare.id, check=False, active=True)
    ext.update_account(chosen.id, check=False, over_limit=over_limit)
    table = ext._state.models.Message.__table__
    with ext._state.engine().begin() as conn:  # due now; the account is still full
        conn.execute(
            table.update().where(table.c.id == waiting.id).values(next_attempt_at=usage_times(ext)[0])
        )

    report = ext.retry_queue()

    assert (report.sent, report.requeued) == (through_backup, 1 - through_backup)
    assert (subjects(main), subjects(backup)) == (["first"], ["second"] * through_backup)
    after = ext.get_message(waiting.id)
    if over_limit == "wait":  # no try counted: no server was tried
        assert (after.status, after.attempts) == ("queued", 0)
        assert after.next_attempt_at == usage_times(ext)[0] + timedelta(seconds=60)
    else:
        assert (after.status, after.account_id) == ("sent", spare.id)


@pytest.mark.parametrize(("over_limit", "through_backup"), [("wait", 0), ("backups", 3)])
def test_the_drainer_sends_the_outbox_within_the_limit_and_the_rest_waits_or_takes_the_backup(
    ext, mail, add_account, make_smtp_server, over_limit, through_backup
):
    main, backup = make_smtp_server(), make_smtp_server()
    spare = add_account(backup, sender_email="shop@example.com")
    add_account(
        main,
        sender_email="shop@example.com",
        limit_per_minute=2,
        over_limit=over_limit,
        backup_ids=[spare.id],
    )
    with ext.outbox():
        for n in range(5):
            mail.send(letter(f"n{n}"))

    report = ext.deliver_queued(connections=2)

    assert (len(main.received), len(backup.received)) == (2, through_backup)
    assert (report.sent, report.requeued) == (2 + through_backup, 3 - through_backup)
    waiting = ext.messages(status="queued").items
    assert len(waiting) == 3 - through_backup
    first = usage_times(ext, "reserved_at")[0]
    assert all(m.attempts == 0 and m.next_attempt_at >= first + timedelta(seconds=60) for m in waiting)


def test_at_its_limit_without_backups_or_queue_the_caller_gets_a_quota_error(
    ext, mail, add_account, make_smtp_server
):
    server = make_smtp_server()
    account = add_account(server, sender_email="shop@example.com", limit_per_minute=2)
    mail.send(letter("n0"))
    mail.send(letter("n1"))
    with pytest.raises(QuotaExceededError) as full:
        mail.send(letter("n2"))

    err = full.value
    assert (err.stage, err.account_id, err.temporary) == ("quota", account.id, True)
    assert err.retry_at == usage_times(ext)[0] + timedelta(seconds=60)
    assert str(err) == (
        f"account {account.id} reached its limit of 2 letters a minute;"
        f" next slot at {err.retry_at:%Y-%m-%d %H:%M:%S} UTC"
    )
    record = ext.get_message(err.record_id)
    assert (record.status, record.error_stage, record.attempts) == ("failed", "quota", 0)
    assert subjects(server) == ["n0", "n1"]


def test_in_one_connection_block_a_full_account_is_announced_once_and_each_letter_gets_its_own_error(
    app, ext, mail, add_account, make_smtp_server
):
    server = make_smtp_server()
    account = add_account(server, sender_email="shop@example.com", limit_per_minute=2)
    announced: list[dict[str, Any]] = []

    def reached(sender: Any, **kwargs: Any) -> None:
        announced.append(kwargs)

    errors = []
    with quota_reached.connected_to(reached, app), mail.connect() as conn:
        for n in range(4):
            try:
                conn.send(letter(f"n{n}"))
            except QuotaExceededError as err:
                errors.append(err)

    assert subjects(server) == ["n0", "n1"]
    assert [ext.get_message(err.record_id).subject for err in errors] == ["n2", "n3"]
    assert [(a["account"].id, a["limit"]) for a in announced] == [(account.id, "2 letters a minute")]


def test_a_letter_that_reached_no_server_gives_its_slot_back(ext, mail, add_account, make_smtp_server):
    server = make_smtp_server()
    ext.update_settings(cooldown_s=0)
    with ClosingServer() as dead:
        account = add_account(server, sender_email="shop@example.com", limit_per_minute=1, port=dead.port)
        with pytest.raises(Exception) as failed:
            mail.send(letter("lost"))
    assert failed.value.stage == "connect"
    assert usage_times(ext) == []

    ext.update_account(account.id, check=False, port=server.port)
    mail.send(letter("sent"))
    assert subjects(server) == ["sent"]


def test_the_retry_run_prunes_usage_older_than_a_day_also_of_accounts_no_longer_limited(
    ext, mail, add_account, make_smtp_server
):
    server = make_smtp_server()
    account = add_account(server, sender_email="shop@example.com", limit_per_hour=10)
    for n in range(3):
        mail.send(letter(f"n{n}"))
    ext.update_account(account.id, check=False, limit_per_hour=0)
    move_usage_back(ext, timedelta(days=1, seconds=1), oldest=2)

    ext.retry_queue()

    assert len(usage_times(ext)) == 1


def test_an_account_without_limits_costs_no_statement(site, ext, mail, add_account, make_smtp_server):
    server = make_smtp_server()
    add_account(server, sender_email="shop@example.com")
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    engine = ext._state.engine()
    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        mail.send(letter("free"))
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)

    assert subjects(server) == ["free"]
    assert statements and not [s for s in statements if "quota" in s]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("limit_per_minute", -1),
        ("limit_per_hour", "ten"),
        ("limit_per_day", 10_000_001),
        ("recipient_limit_per_day", 2.5),
        ("over_limit", "drop"),
    ],
)
def test_a_bad_limit_is_refused_naming_its_field(ext, add_account, smtp_server, field, value):
    with pytest.raises(InvalidAccountError) as refused:
        add_account(smtp_server, **{field: value})
    assert refused.value.field == field
    assert ext.Account.query.count() == 0
