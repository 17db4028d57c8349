"""The message log: a row per letter, its listing, resending, the retry queue and retention."""

from __future__ import annotations

import email
import email.policy
import html
import json
import re
import threading
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from flask_mail import Message
from misbehaving import Refuse

from flask_smtp_accounts import DeliveryError, ResendError, message_queued
from flask_smtp_accounts.models import utcnow
from flask_smtp_accounts.testing import free_port


def letter(sender="Shop <shop@example.com>", subject="Order 1", **kw):
    values = {"recipients": ["ann@example.org"], "body": "Thanks for your order."}
    values.update(kw)
    return Message(subject, sender=sender, **values)


def table(ext):
    from flask import current_app

    return current_app.extensions["smtp_accounts"].models.Message.__table__


def make_due(ext, db):
    """Move every queued letter's next try to the past, as if time had passed."""
    with db.engine.begin() as conn:
        conn.execute(
            table(ext)
            .update()
            .where(table(ext).c.status == "queued")
            .values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )


# --- one row per letter -------------------------------------------------------------


def test_routed_and_default_letters_each_get_a_row(mail, ext, add_account, make_smtp_server, smtp_server):
    server = make_smtp_server()
    account = add_account(server, sender_email="shop@example.com", sender_name="Shop")
    with mail.connect() as conn:
        conn.send(
            letter(subject="Routed", recipients=["ann@example.org", "bob@example.org"], cc=["cy@example.org"])
        )
        conn.send(letter(sender="other@example.com", subject="Default"))

    default, routed = ext.messages().items
    got = server.wait_for(1)[0]
    assert routed.status == "sent" and routed.attempts == 1
    assert routed.account_id == account.id and routed.route == "Shop <shop@example.com>"
    assert routed.rule == "largest-id"
    assert routed.sender == "Shop <shop@example.com>" and routed.subject == "Routed"
    assert sorted(routed.recipients) == ["ann@example.org", "bob@example.org", "cy@example.org"]
    assert routed.delivered_to == routed.recipients and routed.refused == {} and routed.pending == []
    assert routed.message_id == got.message["Message-ID"]
    assert abs(routed.size - len(got.data)) <= 2  # the final CRLF
    assert routed.body is None and routed.error is None
    assert default.account_id is None and default.route == "Flask-Mail default"
    assert default.rule == "no-matching-account" and default.status == "sent"
    assert smtp_server.wait_for(1)[0].message["Subject"] == "Default"


class RowAtData:
    """Server hooks: at DATA, look up the letter's row in the site's database, as another process would."""

    def __init__(self, url: sa.URL) -> None:
        self.engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        self.seen: list[tuple[str, str | None]] = []

    async def handle_DATA(self, server, session, envelope):
        message_id = email.message_from_bytes(envelope.content)["Message-ID"]
        with self.engine.connect() as conn:
            status = conn.scalar(
                sa.text("SELECT status FROM smtp_accounts_message WHERE message_id = :id"), {"id": message_id}
            )
        self.seen.append((message_id, status))
        return None


def test_each_letter_has_its_row_committed_before_its_data_reaches_the_server(
    mail, ext, db, add_account, make_smtp_server
):
    hooks = RowAtData(db.engine.url)
    server = make_smtp_server(handler_hooks=hooks)
    add_account(server, sender_email="shop@example.com")
    with mail.connect() as conn:
        for n in range(3):
            conn.send(letter(subject=f"Order {n}"))
        assert [m.status for m in ext.messages().items] == ["sent", "sent", "sent"]

    assert [status for _, status in hooks.seen] == ["sending", "sending", "sending"]
    assert {m.message_id for m in ext.messages().items} == {message_id for message_id, _ in hooks.seen}


def test_the_sites_own_transaction_is_left_alone(mail, ext, db, add_account, smtp_server):
    add_account(smtp_server, sender_email="shop@example.com")
    settings_row = db.session.get(ext.Settings, 1)
    settings_row.test_recipient = "uncommitted@example.org"
    mail.send(letter())
    db.session.rollback()
    assert ext.messages().total == 1
    assert ext.settings.test_recipient == ""


def test_suppressed_letters_are_logged_as_suppressed(app, mail, ext, add_account, smtp_server):
    app.extensions["mail"].suppress = True
    account = add_account(smtp_server, sender_email="shop@example.com")
    mail.send(letter())
    [row] = ext.messages().items
    assert (row.status, row.account_id) == ("suppressed", account.id)
    assert smtp_server.received == []


def test_routing_off_is_plain_flask_mail_without_a_log(mail, ext, add_account, smtp_server):
    add_account(smtp_server, sender_email="shop@example.com")
    ext.update_settings(enabled=False)
    mail.send(letter())
    assert smtp_server.wait_for(1)
    assert ext.messages().total == 0


def test_keep_bodies_keeps_what_was_sent(mail, ext, add_account, smtp_server):
    ext.update_settings(keep_bodies=True)
    add_account(smtp_server, sender_email="shop@example.com", sender_name="Shop")
    mail.send(letter(sender="shop@example.com"))
    [row] = ext.messages().items
    assert row.body is not None
    kept = email.message_from_bytes(row.body, policy=email.policy.default)
    assert kept["From"] == "Shop <shop@example.com>" and kept["Message-ID"] == row.message_id


# --- listing ------------------------------------------------------------------------


def test_filters_and_pages(mail, ext, db, add_account, make_smtp_server, smtp_server):
    shop = add_account(make_smtp_server(), sender_email="shop@example.com")
    failing = add_account(
        make_smtp_server(handler_hooks=Refuse("DATA", "554 5.7.1 No")), sender_email="news@example.com"
    )
    with mail.connect() as conn:
        for n in range(60):
            conn.send(letter(subject=f"Shop {n}", recipients=[f"buyer{n}@example.org"]))
        for n in range(3):
            conn.send(letter(sender="other@example.com", subject=f"Default {n}"))
    for _ in range(2):
        with pytest.raises(DeliveryError):
            mail.send(letter(sender="news@example.com", subject="News"))
    with db.engine.begin() as conn:
        conn.execute(
            table(ext)
            .update()
            .where(table(ext).c.subject == "Shop 0")
            .values(created_at=datetime(2020, 1, 1))
        )

    first, second = ext.messages(page=1), ext.messages(page=2)
    assert (first.total, len(first.items), len(second.items), first.pages) == (65, 50, 15, 2)
    assert {m.id for m in first.items}.isdisjoint({m.id for m in second.items})
    assert [m.subject for m in ext.messages(status="failed").items] == ["News", "News"]
    assert ext.messages(account_id=failing.id).total == 2
    assert ext.messages(account_id=shop.id).total == 60
    assert ext.messages(account_id=0).total == 3
    assert [m.subject for m in ext.messages(address="BUYER7@").items] == ["Shop 7"]
    assert ext.messages(address="news@example.com").total == 2
    assert [m.subject for m in ext.messages(until=datetime(2021, 1, 1)).items] == ["Shop 0"]
    assert ext.messages(since=datetime(2021, 1, 1)).total == 64
    with pytest.raises(LookupError):
        ext.get_message(9999)


# --- failed letters and resending -------------------------------------------------------


def test_failed_letter_keeps_its_body_and_is_resent_once(mail, ext, add_account, make_smtp_server):
    server = make_smtp_server(handler_hooks=Refuse("DATA", "451 4.3.0 Try later", times=1))
    add_account(server, sender_email="shop@example.com")

    with pytest.raises(DeliveryError) as raised:
        mail.send(letter())
    failed = ext.get_message(raised.value.record_id)
    assert (failed.status, failed.error_stage, failed.error_code, failed.error_reply) == (
        "failed",
        "send",
        451,
        "4.3.0 Try later",
    )
    assert "(at DATA)" in failed.error and failed.resendable
    assert failed.body is not None and failed.pending == ["ann@example.org"]

    resent = ext.resend_message(failed.id)

    [got] = server.wait_for(1)
    assert got.message["Message-ID"] == failed.message_id
    assert got.message["Subject"] == "Order 1"
    assert (resent.status, resent.attempts, resent.body, resent.pending) == ("sent", 2, None, [])
    assert [h["result"] for h in resent.history] == ["failed", "sent"]
    with pytest.raises(ResendError, match="deliver it twice"):
        ext.resend_message(failed.id)
    assert len(server.received) == 1


def test_resend_that_fails_again_raises_and_stays_failed(mail, ext, add_account, make_smtp_server):
    server = make_smtp_server(handler_hooks=Refuse("MAIL", "451 4.3.0 Busy"))
    add_account(server, sender_email="shop@example.com")
    with pytest.raises(DeliveryError) as raised:
        mail.send(letter())
    with pytest.raises(DeliveryError) as again:
        ext.resend_message(raised.value.record_id)
    assert again.value.record_id == raised.value.record_id
    row = ext.get_message(raised.value.record_id)
    assert (row.status, row.attempts, len(row.history)) == ("failed", 2, 2)


# --- the queue ------------------------------------------------------------------------------


def test_queue_mode_returns_and_the_retry_run_delivers(app, mail, ext, db, add_account, make_smtp_server):
    ext.update_settings(queue_undelivered=True, retry_backoff_s=120)
    server = make_smtp_server(handler_hooks=Refuse("DATA", "451 4.3.0 Try later", times=1))
    add_account(server, sender_email="shop@example.com")
    queued = []
    with (
        message_queued.connected_to(lambda sender, **kw: queued.append(kw["record_id"]), app),
        mail.record_messages() as dispatched,
    ):
        mail.send(letter())
    assert dispatched == []  # Flask-Mail's email_dispatched: not for a letter that is only queued

    [row] = ext.messages().items
    assert queued == [row.id]
    assert (row.status, row.attempts, row.error_code) == ("queued", 1, 451)
    assert utcnow() + timedelta(seconds=100) < row.next_attempt_at < utcnow() + timedelta(seconds=121)
    assert ext.retry_queue().sent == 0  # not due yet

    make_due(ext, db)
    report = ext.retry_queue()

    assert (report.sent, report.requeued, report.failed) == (1, 0, 0)
    [got] = server.wait_for(1)
    assert got.message["Message-ID"] == row.message_id
    done = ext.get_message(row.id)
    assert (done.status, done.attempts, done.body, done.next_attempt_at) == ("sent", 2, None, None)
    make_due(ext, db)
    assert ext.retry_queue().sent == 0
    assert len(server.received) == 1


def test_a_queued_letter_of_flask_mails_own_route_is_retried_there(app, mail, ext, db, smtp_server):
    ext.update_settings(queue_undelivered=True)
    flask_mail_state = app.extensions["mail"]
    working_port, flask_mail_state.port = flask_mail_state.port, free_port()
    mail.send(letter(sender="nobody-routed@example.com"))
    row = ext.messages().items[0]
    assert (row.status, row.account_id, row.route, row.error_stage) == (
        "queued",
        None,
        "Flask-Mail default",
        "connect",
    )

    flask_mail_state.port = working_port
    make_due(ext, db)
    assert ext.retry_queue().sent == 1
    assert smtp_server.wait_for(1)[0].message["Message-ID"] == row.message_id
    assert ext.get_message(row.id).status == "sent"


def test_backoff_doubles_until_max_attempts(mail, ext, db, add_account, make_smtp_server):
    ext.update_settings(queue_undelivered=True, retry_backoff_s=60, max_attempts=3)
    add_account(
        make_smtp_server(handler_hooks=Refuse("RCPT", "450 4.2.1 Mailbox busy")),
        sender_email="shop@example.com",
    )
    mail.send(letter())
    record_id = ext.messages().items[0].id

    make_due(ext, db)
    assert ext.retry_queue().requeued == 1
    second = ext.get_message(record_id)
    assert second.status == "queued" and second.attempts == 2
    assert utcnow() + timedelta(seconds=100) < second.next_attempt_at <= utcnow() + timedelta(seconds=120)

    make_due(ext, db)
    assert ext.retry_queue().failed == 1
    last = ext.get_message(record_id)
    assert (last.status, last.attempts, last.error_code) == ("failed", 3, 450)
    assert last.resendable


def test_permanent_refusal_is_not_queued(mail, ext, add_account, make_smtp_server):
    ext.update_settings(queue_undelivered=True)
    add_account(
        make_smtp_server(handler_hooks=Refuse("DATA", "554 5.7.1 Refused")), sender_email="shop@example.com"
    )
    with pytest.raises(DeliveryError):
        mail.send(letter())
    assert ext.messages().items[0].status == "failed"


def test_two_retry_runs_at_once_send_each_letter_once(app, mail, ext, db, add_account, make_smtp_server):
    ext.update_settings(queue_undelivered=True)
    hooks = Refuse("DATA", "451 4.3.0 Try later", times=20)
    server = make_smtp_server(handler_hooks=hooks)
    add_account(server, sender_email="shop@example.com")
    with mail.connect() as conn:
        for n in range(20):
            conn.send(letter(subject=f"Order {n}"))
    assert ext.messages(status="queued").total == 20
    make_due(ext, db)

    reports = []
    start = threading.Barrier(2)

    def run() -> None:
        with app.app_context():
            start.wait()
            reports.append(ext.retry_queue())

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    got = server.wait_for(20)
    ids = [r.message["Message-ID"] for r in got]
    assert len(ids) == len(set(ids)) == 20
    assert sum(r.sent for r in reports) == 20
    assert ext.messages(status="sent").total == 20


def test_a_letter_left_sending_past_its_lease_shows_as_interrupted_and_is_resent_only_by_hand(
    mail, ext, db, add_account, make_smtp_server
):
    ext.update_settings(queue_undelivered=True)
    server = make_smtp_server(handler_hooks=Refuse("DATA", "451 4.3.0 Try later", times=1))
    add_account(server, sender_email="shop@example.com")
    mail.send(letter())
    record_id = ext.messages().items[0].id
    with db.engine.begin() as conn:  # what a process killed while sending leaves
        conn.execute(
            table(ext).update().values(status="sending", claimed_until=utcnow() - timedelta(seconds=1))
        )

    report = ext.retry_queue()

    assert (report.interrupted, report.sent) == (1, 0)
    row = ext.get_message(record_id)
    assert (row.status, row.state, row.interrupted, row.resendable) == ("sending", "interrupted", True, True)
    assert [m.id for m in ext.messages(status="interrupted").items] == [record_id]
    assert ext.messages(status="sending").total == 0
    assert server.received == []

    assert ext.resend_message(record_id).status == "sent"
    assert len(server.wait_for(1)) == 1


def test_partial_acceptance_retries_only_the_temporarily_refused(
    mail, ext, db, add_account, make_smtp_server
):
    ext.update_settings(queue_undelivered=True)

    class Hooks:
        later = Refuse("RCPT", "451 4.2.0 Greylisted", addresses={"later@example.org"}, times=1)
        never = Refuse("RCPT", "550 5.1.1 No such user", addresses={"nobody@example.org"})

        async def handle_RCPT(self, *args):
            return await self.later.handle_RCPT(*args) or await self.never.handle_RCPT(*args)

    server = make_smtp_server(handler_hooks=Hooks())
    add_account(server, sender_email="shop@example.com")
    mail.send(letter(recipients=["ann@example.org", "later@example.org", "nobody@example.org"]))

    first = server.wait_for(1)[0]
    assert first.rcpt_tos == ["ann@example.org"]
    row = ext.messages().items[0]
    assert row.status == "queued"
    assert row.pending == ["later@example.org"] and row.delivered_to == ["ann@example.org"]
    assert row.refused == {
        "later@example.org": (451, "4.2.0 Greylisted"),
        "nobody@example.org": (550, "5.1.1 No such user"),
    }

    make_due(ext, db)
    assert ext.retry_queue().sent == 1

    second = server.wait_for(2)[1]
    assert second.rcpt_tos == ["later@example.org"]
    assert second.message["Message-ID"] == first.message["Message-ID"]
    done = ext.get_message(row.id)
    assert done.status == "sent" and done.pending == []
    assert done.refused == {"nobody@example.org": (550, "5.1.1 No such user")}
    assert sorted(done.delivered_to) == ["ann@example.org", "later@example.org"]


def test_cli_retry_reports_the_run(app, mail, ext, db, add_account, make_smtp_server):
    ext.update_settings(queue_undelivered=True)
    add_account(
        make_smtp_server(handler_hooks=Refuse("DATA", "451 4.3.0 Later", times=1)),
        sender_email="shop@example.com",
    )
    mail.send(letter())
    make_due(ext, db)
    result = app.test_cli_runner().invoke(args=["smtp-accounts", "retry"])
    assert result.exit_code == 0, result.output
    assert "sent 1, requeued 0, failed 0" in result.output


# --- retention ------------------------------------------------------------------------------


def test_retention_prunes_old_rows_in_batches_and_keeps_the_queue(
    app, mail, ext, db, add_account, smtp_server
):
    add_account(smtp_server, sender_email="shop@example.com")
    with mail.connect() as conn:
        for n in range(25):
            conn.send(letter(subject=f"Old {n}"))
        conn.send(letter(subject="New"))
    statements = []
    old = utcnow() - timedelta(days=31)
    with db.engine.begin() as conn:
        conn.execute(table(ext).update().where(table(ext).c.subject.like("Old %")).values(created_at=old))
        conn.execute(table(ext).update().where(table(ext).c.subject == "Old 0").values(status="queued"))
    app.extensions["smtp_accounts"].message_log.prune_batch = 10

    def count_deletes(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("DELETE"):
            statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count_deletes)
    try:
        assert ext.prune_messages() == 24
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count_deletes)
    assert len(statements) == 3
    assert sorted(m.subject for m in ext.messages().items) == ["New", "Old 0"]
    ext.update_settings(message_retention_days=0)
    with db.engine.begin() as conn:
        conn.execute(table(ext).update().values(created_at=old, status="sent"))
    assert ext.prune_messages() == 0


def test_rows_hold_json_that_other_tools_can_read(mail, ext, db, add_account, smtp_server):
    add_account(smtp_server, sender_email="shop@example.com")
    mail.send(letter(recipients=["ann@example.org", "bob@example.org"]))
    with db.engine.connect() as conn:
        raw = conn.execute(sa.select(table(ext).c.recipients)).scalar_one()
    assert sorted(json.loads(raw)) == ["ann@example.org", "bob@example.org"]


# --- the admin page ---------------------------------------------------------------------------

ADMIN_MESSAGES = "/admin/smtp-accounts/messages/"


def logged_in(site, user):
    client = site.app.test_client()
    client.get(f"/test-login/{user}")
    return client


def page_text(response):
    body = response.get_data(as_text=True)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body)))


def test_admin_lists_filters_and_pages_the_log(admin_site, make_smtp_server, smtp_server):
    ext, mail = admin_site.ext, admin_site.site.mail
    with admin_site.app.app_context():
        ext.add_account(
            check=False,
            sender_email="shop@example.com",
            host=smtp_server.host,
            port=smtp_server.port,
            security="none",
            auth="none",
        )
        refusing = make_smtp_server(handler_hooks=Refuse("DATA", "554 5.7.1 Refused"))
        ext.add_account(
            check=False,
            sender_email="news@example.com",
            host=refusing.host,
            port=refusing.port,
            security="none",
            auth="none",
        )
        with mail.connect() as conn:
            for n in range(55):
                conn.send(letter(subject=f"Order {n}"))
        with pytest.raises(DeliveryError):
            mail.send(letter(sender="news@example.com", subject="Weekly news"))
    client = logged_in(admin_site, "reader")

    first = client.get(ADMIN_MESSAGES)
    assert first.status_code == 200
    text = page_text(first)
    assert "Letters: 56; page 1 of 2" in text
    assert len(re.findall(r'class="sa-message-row"', first.get_data(as_text=True))) == 50
    assert (
        "Weekly news" in text and "Failed at the sending stage. The server replied: 554 5.7.1 Refused" in text
    )
    assert "Resend" not in text  # view_logs only
    second = page_text(client.get(ADMIN_MESSAGES + "?page=2"))
    assert "Order 0" in second and "Weekly news" not in second
    failed = page_text(client.get(ADMIN_MESSAGES + "?status=failed"))
    assert "Letters: 1;" in failed and "Weekly news" in failed and "Order 1 " not in failed
    by_address = page_text(client.get(ADMIN_MESSAGES + "?address=news%40example.com"))
    assert "Letters: 1;" in by_address
    assert "Letters: 0;" in page_text(client.get(ADMIN_MESSAGES + "?since=2000-01-01&until=2000-01-02"))
    assert logged_in(admin_site, "nobody").get(ADMIN_MESSAGES).status_code == 403


def test_admin_resends_a_failed_letter_once(admin_site, make_smtp_server):
    ext, mail = admin_site.ext, admin_site.site.mail
    server = make_smtp_server(handler_hooks=Refuse("DATA", "451 4.3.0 Try later", times=1))
    with admin_site.app.app_context():
        ext.add_account(
            check=False,
            sender_email="shop@example.com",
            host=server.host,
            port=server.port,
            security="none",
            auth="none",
        )
        with pytest.raises(DeliveryError) as raised:
            mail.send(letter())
    record_id = raised.value.record_id
    view_url = f"{ADMIN_MESSAGES}{record_id}/"

    reader = logged_in(admin_site, "reader")
    assert "451 4.3.0 Try later" in page_text(reader.get(view_url))
    assert reader.post(f"{view_url}resend").status_code == 403
    admin = logged_in(admin_site, "admin")
    page = admin.get(view_url).get_data(as_text=True)
    assert admin.post(f"{view_url}resend").status_code == 302  # no CSRF token: refused
    assert server.received == []

    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    done = admin.post(f"{view_url}resend", data={"csrf_token": token}, follow_redirects=True)

    assert "The letter was sent again and delivered through shop@example.com." in page_text(done)
    assert server.wait_for(1)[0].message["Subject"] == "Order 1"
    again = admin.post(f"{view_url}resend", data={"csrf_token": token}, follow_redirects=True)
    assert "deliver it twice" in page_text(again)
    assert len(server.received) == 1


def test_admin_shows_accounts_cooling_down(admin_site, smtp_server):
    ext, mail = admin_site.ext, admin_site.site.mail
    with admin_site.app.app_context():
        ext.add_account(
            check=False,
            sender_email="shop@example.com",
            host="127.0.0.1",
            port=free_port(),
            security="none",
            auth="none",
        )
        with pytest.raises(DeliveryError):
            mail.send(letter())
    text = page_text(logged_in(admin_site, "reader").get(ADMIN_MESSAGES))
    assert "Account shop@example.com is skipped until" in text and "Connection refused" in text
    accounts = page_text(logged_in(admin_site, "admin").get("/admin/smtp-accounts/accounts/"))
    assert "Account shop@example.com is skipped until" in accounts
