"""The outbox: letters stored queued, claimed in batches, delivered over parallel connections, each once.

Real SMTP servers (aiosmtpd), the suite's real database (SQLite, or
PostgreSQL / MariaDB by ``SMTP_ACCOUNTS_TEST_DATABASE_URL``), real threads.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import flask_mail
import pytest
import sqlalchemy as sa
from apps import stored_rows
from flask_mail import Message
from misbehaving import Refuse

from flask_smtp_accounts import InvalidArgumentError, redelivery
from flask_smtp_accounts.models import utcnow
from flask_smtp_accounts.routing import bulk_sending


def letter(subject: str = "Hi", sender: str = "shop@example.com", **kwargs) -> Message:
    return Message(subject, sender=sender, recipients=["bob@example.org"], body="Hello.", **kwargs)


def queue_letters(ext, mail, count: int, sender: str = "shop@example.com") -> list[str]:
    """Store ``count`` letters in the outbox; their Message-IDs."""
    ids = []
    with ext.outbox(), mail.connect() as conn:
        for n in range(count):
            message = letter(f"Letter {n}", sender)
            conn.send(message)
            ids.append(message.msgId)
    return ids


def rows(app, where: str = "1 = 1") -> list[dict]:
    return stored_rows(
        app,
        "SELECT id, status, account_id, chosen_account_id, message_id, attempts, claimed_until, body"
        f" FROM smtp_accounts_message WHERE {where} ORDER BY id",
    )


def message_log(app):
    return app.extensions["smtp_accounts"].message_log


def expire_claims(db) -> None:
    """What the end of a lease looks like: ``claimed_until`` in the past (no test waits for it)."""
    past = utcnow() - timedelta(seconds=1)
    with db.engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE smtp_accounts_message SET claimed_until = :past WHERE status IN ('claimed', 'sending')"
            ),
            {"past": past},
        )


# --- the outbox --------------------------------------------------------------------


def test_a_letter_sent_inside_the_outbox_waits_queued_with_its_message_id_and_account(
    app, mail, ext, add_account, make_smtp_server
):
    server = make_smtp_server()
    account = add_account(server, sender_email="shop@example.com")
    message = letter("Queued")

    with ext.outbox():
        mail.send(message)

    assert server.received == []
    [row] = rows(app)
    assert (row["status"], row["account_id"], row["chosen_account_id"], row["attempts"]) == (
        "queued",
        account.id,
        account.id,
        0,
    )
    assert row["message_id"] == message.msgId and message.msgId.encode() in row["body"]

    report = ext.deliver_queued()

    [received] = server.wait_for(1)
    assert received.message_id == message.msgId and received.message["Subject"] == "Queued"
    assert (report.sent, report.failed, report.left) == (1, 0, 0)
    assert [r["status"] for r in rows(app)] == ["sent"]


def test_outside_the_block_letters_go_out_at_once(app, mail, ext, add_account, make_smtp_server):
    server = make_smtp_server()
    add_account(server, sender_email="shop@example.com")
    with ext.outbox():
        mail.send(letter("Queued"))
    mail.send(letter("Now"))

    assert [r.message["Subject"] for r in server.wait_for(1)] == ["Now"]
    assert sorted(r["status"] for r in rows(app)) == ["queued", "sent"]


def test_the_outbox_all_setting_queues_every_letter(app, mail, ext, add_account, make_smtp_server):
    server = make_smtp_server()
    add_account(server, sender_email="shop@example.com")
    ext.update_settings(outbox_all="true")

    mail.send(letter())
    mail.send(letter(sender="nobody@example.net"))  # no account: Flask-Mail's own route, queued too

    assert server.received == []
    assert [r["status"] for r in rows(app)] == ["queued", "queued"]
    assert ext.deliver_queued().sent == 2
    assert len(server.wait_for(1)) == 1


def test_the_outbox_bulk_setting_queues_bulk_letters_only(app, mail, ext, add_account, make_smtp_server):
    server = make_smtp_server()
    add_account(server, sender_email="shop@example.com")
    ext.update_settings(outbox_bulk=True)

    mail.send(letter("Personal"))
    mail.send(letter("Newsletter", extra_headers={"List-Unsubscribe": "<mailto:off@example.com>"}))
    with bulk_sending():
        mail.send(letter("Marked"))

    assert [r.message["Subject"] for r in server.wait_for(1)] == ["Personal"]
    assert [r["status"] for r in rows(app)] == ["sent", "queued", "queued"]


def test_the_outbox_settings_are_checked(ext):
    from flask_smtp_accounts import InvalidSettingError

    with pytest.raises(InvalidSettingError, match="outbox_all: must be true or false"):
        ext.update_settings(outbox_all="sometimes")
    assert ext.settings.outbox_all is False


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (lambda: Message("Hi", sender="shop@example.com", body="x"), AssertionError),
        (lambda: letter("Hi\r\nBcc: eve@example.org"), flask_mail.BadHeaderError),
        (lambda: _unrenderable(), TypeError),
    ],
    ids=["no recipients", "bad header", "fails to render"],
)
def test_bad_input_gets_the_same_error_as_without_the_outbox_and_nothing_is_stored(
    app, mail, ext, add_account, make_smtp_server, bad, error
):
    add_account(make_smtp_server(), sender_email="shop@example.com")
    with pytest.raises(error) as inline:
        mail.send(bad())
    with pytest.raises(error) as queued, ext.outbox():
        mail.send(bad())

    assert str(queued.value) == str(inline.value)
    assert rows(app) == []


def _unrenderable() -> Message:
    message = letter()
    message.attach("a.bin", "application/octet-stream", data=12345)  # type: ignore[arg-type]  # not bytes: cannot be rendered
    return message


# --- claims ------------------------------------------------------------------------


def test_claims_made_at_once_never_take_a_letter_twice(app, mail, ext, add_account, make_smtp_server):
    add_account(make_smtp_server(), sender_email="shop@example.com")
    queue_letters(ext, mail, 120)
    log = message_log(app)
    taken: list[list[int]] = []
    start = threading.Barrier(8)

    def claimer() -> None:
        with app.app_context():
            start.wait(30)
            while claim := log.claim(7).ids:
                taken.append(claim)

    threads = [threading.Thread(target=claimer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    every = [record_id for claim in taken for record_id in claim]
    assert sorted(every) == [r["id"] for r in rows(app)]
    assert {r["status"] for r in rows(app)} == {"claimed"}


def test_a_claim_past_its_lease_is_due_again_and_delivered_once(
    app, db, mail, ext, add_account, make_smtp_server
):
    server = make_smtp_server()
    add_account(server, sender_email="shop@example.com")
    [message_id] = queue_letters(ext, mail, 1)
    log = message_log(app)
    stale = log.claim(10)  # a drainer that stopped before sending anything
    assert ext.deliver_queued().sent == 0  # within the lease, nobody else takes it

    expire_claims(db)
    report = ext.deliver_queued()

    assert report.sent == 1 and [r.message_id for r in server.wait_for(1)] == [message_id]
    assert log.begin_sending(stale.ids[0], stale.until) is None  # the first claim can no longer send it
    assert [r["status"] for r in rows(app)] == ["sent"]


def test_a_drainer_whose_claim_ran_out_sends_no_content_of_its_letters_and_each_arrives_once(
    app, db, mail, ext, add_account, make_smtp_server
):
    """The stale drainer's envelope of a letter may reach the server; its content never does."""
    server = make_smtp_server(pipelining=True)
    add_account(server, sender_email="shop@example.com")
    queued = queue_letters(ext, mail, 3)
    state = app.extensions["smtp_accounts"]
    stale = state.message_log.claim(10)  # a drainer that stalls before sending anything
    expire_claims(db)
    assert ext.deliver_ids(stale.ids[:1]).sent == 1  # another drainer takes the first letter

    with app.app_context():
        dispatcher = redelivery.dispatcher(state)
        try:
            tally = redelivery.deliver_claimed(state, dispatcher, stale)  # the stalled drainer wakes up
        finally:
            dispatcher.close()
    report = ext.deliver_queued()

    assert (tally.sent, tally.skipped) == (0, 3)
    assert report.sent == 2
    received = [r.message_id for r in server.wait_for(3)]
    assert sorted(received) == sorted(queued)
    assert [r["status"] for r in rows(app)] == ["sent"] * 3


def test_a_letter_left_sending_past_its_lease_is_interrupted_and_never_sent_again(
    app, db, mail, ext, add_account, make_smtp_server
):
    server = make_smtp_server()
    add_account(server, sender_email="shop@example.com")
    queue_letters(ext, mail, 1)
    log = message_log(app)
    claim = log.claim(10)
    assert log.begin_sending(claim.ids[0], claim.until) is not None  # then the drainer died mid-send

    expire_claims(db)
    report = ext.deliver_queued()
    retried = ext.retry_queue()

    assert (report.sent, retried.sent, retried.interrupted) == (0, 0, 1)
    assert server.received == []
    assert [m.state for m in ext.messages().items] == ["interrupted"]


def test_the_retry_run_takes_its_letters_through_the_same_claim(
    app, db, mail, ext, add_account, make_smtp_server
):
    server = make_smtp_server(handler_hooks=Refuse("DATA", "451 4.3.0 Try later", times=1))
    add_account(server, sender_email="shop@example.com")
    ext.update_settings(queue_undelivered=True)
    mail.send(letter("Retried"))
    with db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE smtp_accounts_message SET next_attempt_at = :now"), {"now": utcnow()})
    held = message_log(app).claim(10)  # a drainer holds it: the retry run leaves it

    assert (held.ids, ext.retry_queue().sent) == ([1], 0)
    expire_claims(db)
    assert ext.retry_queue().sent == 1
    assert [r.message["Subject"] for r in server.wait_for(1)] == ["Retried"]


# --- deliver_queued, deliver_ids, queued_ids -----------------------------------------


@pytest.mark.parametrize("connections", [0, -1, 101, "8", 2.5, True])
def test_an_absurd_number_of_connections_is_refused_before_anything_is_claimed(
    app, mail, ext, add_account, make_smtp_server, connections
):
    server = make_smtp_server()
    add_account(server, sender_email="shop@example.com")
    queue_letters(ext, mail, 2)

    with pytest.raises(InvalidArgumentError, match="^connections: must be"):
        ext.deliver_queued(connections=connections)

    assert [(r["status"], r["claimed_until"]) for r in rows(app)] == [("queued", None)] * 2
    assert server.received == []


def test_a_negative_limit_is_refused(app, mail, ext):
    with pytest.raises(InvalidArgumentError, match="^limit: must be"):
        ext.deliver_queued(limit=-1)


def test_a_limit_sends_that_many_and_leaves_the_rest(app, mail, ext, add_account, make_smtp_server):
    server = make_smtp_server()
    add_account(server, sender_email="shop@example.com")
    queue_letters(ext, mail, 10)

    report = ext.deliver_queued(connections=3, limit=4)

    assert (report.sent, report.left) == (4, 6)
    assert len(server.wait_for(4)) == 4
    assert Counter(r["status"] for r in rows(app)) == {"sent": 4, "queued": 6}


def test_a_temporary_failure_goes_back_to_the_queue_with_its_backoff(
    app, mail, ext, add_account, make_smtp_server
):
    server = make_smtp_server(handler_hooks=Refuse("DATA", "451 4.3.0 Try later", times=1))
    add_account(server, sender_email="shop@example.com")
    queue_letters(ext, mail, 1)
    before = utcnow()

    report = ext.deliver_queued()

    assert (report.sent, report.requeued, report.left) == (0, 1, 1)
    [row] = ext.messages().items
    assert (row.status, row.attempts, row.error_code) == ("queued", 1, 451)
    assert row.next_attempt_at >= before + timedelta(seconds=ext.settings.retry_backoff_s)


def test_deliver_ids_sends_exactly_those_letters_once(app, mail, ext, add_account, make_smtp_server):
    server = make_smtp_server()
    add_account(server, sender_email="shop@example.com")
    message_ids = queue_letters(ext, mail, 5)
    due = ext.queued_ids(10)
    assert due == [r["id"] for r in rows(app)]

    first = ext.deliver_ids([due[1], due[3]])
    again = ext.deliver_ids([due[1], due[3], 999_999, "x"])

    assert (first.sent, first.skipped, again.sent, again.skipped) == (2, 0, 0, 4)
    assert [r.message_id for r in server.wait_for(2)] == [message_ids[1], message_ids[3]]
    assert ext.queued_ids(10) == [due[0], due[2], due[4]]


def test_letters_of_two_accounts_over_eight_connections_each_arrive_once(
    app, mail, ext, add_account, make_smtp_server
):
    shop, news = make_smtp_server(), make_smtp_server()
    add_account(shop, sender_email="shop@example.com")
    add_account(news, sender_email="news@example.com")
    sent = queue_letters(ext, mail, 150, "shop@example.com") + queue_letters(
        ext, mail, 150, "news@example.com"
    )

    report = ext.deliver_queued(connections=8)

    received = [r.message_id for r in shop.wait_for(150) + news.wait_for(150)]
    assert Counter(received) == Counter(sent) and len(set(sent)) == 300
    assert {r.message["From"] for r in shop.received} == {"shop@example.com"}
    assert (report.sent, report.failed, report.left) == (300, 0, 0)
    assert Counter(r["status"] for r in rows(app)) == {"sent": len(received)}


def test_with_sending_suppressed_an_outbox_letter_is_logged_suppressed_not_queued(
    app, mail, ext, add_account, make_smtp_server
):
    server = make_smtp_server()
    add_account(server, sender_email="shop@example.com")
    app.extensions["mail"].suppress = True  # MAIL_SUPPRESS_SEND, as under TESTING

    with ext.outbox():
        mail.send(letter())

    assert [r["status"] for r in rows(app)] == ["suppressed"]
    assert ext.deliver_queued().sent == 0 and server.received == []
