"""The outbox seen and steered: its status per account, pause and resume, cancel; the same on the command line."""

from __future__ import annotations

from collections import Counter

import pytest
from apps import stored_rows
from test_outbox import message_log, queue_letters


@pytest.fixture
def two_accounts(add_account, make_smtp_server):
    shop, news = make_smtp_server(), make_smtp_server()
    return (
        (add_account(shop, sender_email="shop@example.com"), shop),
        (add_account(news, sender_email="news@example.com", sender_name="News"), news),
    )


def statuses(app) -> Counter:
    return Counter(r["status"] for r in stored_rows(app, "SELECT status FROM smtp_accounts_message"))


def test_a_paused_account_keeps_its_letters_until_resumed_and_others_go_on(app, mail, ext, two_accounts):
    (shop, shop_server), (news, news_server) = two_accounts
    queue_letters(ext, mail, 3, "shop@example.com")
    queue_letters(ext, mail, 2, "news@example.com")

    ext.pause_queue(shop.id)
    paused_run = ext.deliver_queued(connections=4)
    retry_run = ext.retry_queue()

    assert (paused_run.sent, paused_run.left, retry_run.sent) == (2, 3, 0)
    assert shop_server.received == [] and len(news_server.wait_for(2)) == 2
    assert ext.queued_ids(10, account_id=shop.id) == []

    ext.resume_queue(shop.id)
    assert ext.deliver_queued().sent == 3
    assert len(shop_server.wait_for(3)) == 3


def test_the_status_shows_per_account_what_waits_what_went_and_the_pause(app, mail, ext, two_accounts):
    (shop, _), (news, _) = two_accounts
    queue_letters(ext, mail, 3, "shop@example.com")
    queue_letters(ext, mail, 2, "news@example.com")
    ext.pause_queue(shop.id)
    ext.deliver_queued()
    message_log(app).claim(1)  # nothing of shop's: paused, so nothing is claimed

    lines = {line.account_id: line for line in ext.outbox_status()}

    assert set(lines) == {shop.id, news.id}
    shop_line, news_line = lines[shop.id], lines[news.id]
    assert (shop_line.queued, shop_line.in_flight, shop_line.sent_24h, shop_line.paused) == (3, 0, 0, True)
    assert shop_line.seconds_left is None  # nothing of it is being sent: no rate to count on
    assert (news_line.label, news_line.queued, news_line.sent_24h, news_line.paused) == (
        "News <news@example.com>",
        0,
        2,
        False,
    )
    assert news_line.per_minute == pytest.approx(2 / 5)
    assert news_line.seconds_left == 0


def test_a_claimed_letter_counts_as_being_sent(app, mail, ext, two_accounts):
    (shop, _), _ = two_accounts
    queue_letters(ext, mail, 3, "shop@example.com")
    message_log(app).claim(2)

    [line] = [line for line in ext.outbox_status() if line.account_id == shop.id]

    assert (line.queued, line.in_flight) == (1, 2)


def test_cancelled_letters_are_never_sent_and_letters_being_sent_are_left(app, mail, ext, two_accounts):
    (shop, shop_server), (news, news_server) = two_accounts
    queue_letters(ext, mail, 3, "shop@example.com")
    queue_letters(ext, mail, 2, "news@example.com")
    held = message_log(app).claim(1, account_id=news.id)  # a drainer is on it

    assert ext.cancel_queued(account_id=shop.id) == 3
    assert ext.cancel_queued(ids=[*held.ids, 999]) == 0
    assert ext.deliver_queued().sent == 1

    assert shop_server.received == [] and len(news_server.wait_for(1)) == 1
    assert statuses(app) == {"cancelled": 3, "sent": 1, "claimed": 1}


def test_an_unknown_account_id_is_refused(ext):
    with pytest.raises(LookupError):
        ext.pause_queue("x")


# --- the command line -------------------------------------------------------------


def test_deliver_on_the_command_line_reports_what_it_did(app, mail, ext, two_accounts):
    (_, shop_server), _ = two_accounts
    queue_letters(ext, mail, 4, "shop@example.com")
    runner = app.test_cli_runner()

    result = runner.invoke(args=["smtp-accounts", "deliver", "--connections", "2"])

    assert result.exit_code == 0, result.output
    assert result.output.startswith("sent 4 / failed 0 / left 0 (0 back in the queue), ")
    assert result.output.rstrip().endswith("letters/s, done")
    assert len(shop_server.wait_for(4)) == 4


@pytest.mark.parametrize("connections", ["0", "101"])
def test_deliver_refuses_an_absurd_number_of_connections(app, mail, ext, two_accounts, connections):
    queue_letters(ext, mail, 1, "shop@example.com")

    result = app.test_cli_runner().invoke(args=["smtp-accounts", "deliver", "--connections", connections])

    assert result.exit_code == 1
    assert f"Error: connections: must be between 1 and 100, not {connections}" in result.output
    assert statuses(app) == {"queued": 1}


def test_outbox_status_pause_resume_and_cancel_on_the_command_line(app, mail, ext, two_accounts):
    (shop, _), _ = two_accounts
    queue_letters(ext, mail, 2, "shop@example.com")
    runner = app.test_cli_runner()

    paused = runner.invoke(args=["smtp-accounts", "outbox", "pause", str(shop.id)])
    status = runner.invoke(args=["smtp-accounts", "outbox", "status"])

    assert paused.exit_code == 0 and paused.output == f"Queue of account {shop.id} paused.\n"
    header, shop_row, _ = status.output.splitlines()
    assert (
        header.split() == "ID Account Queued Sending Sent 24h Failed 24h Per minute Time left Paused".split()
    )
    assert shop_row.split() == [str(shop.id), "shop@example.com", "2", "0", "0", "0", "0.0", "-", "yes"]

    refused = runner.invoke(args=["smtp-accounts", "outbox", "cancel", "--all"], input="n\n")
    assert (
        refused.exit_code == 1 and "Cancel every waiting letter? They will never be sent." in refused.output
    )
    assert statuses(app) == {"queued": 2}
    neither = runner.invoke(args=["smtp-accounts", "outbox", "cancel", "--yes"])
    assert neither.exit_code == 2 and "--account ID or --all" in neither.output

    cancelled = runner.invoke(args=["smtp-accounts", "outbox", "cancel", "--account", str(shop.id), "--yes"])
    assert cancelled.output == "Cancelled 2 letters.\n"
    assert statuses(app) == {"cancelled": 2}
    resumed = runner.invoke(args=["smtp-accounts", "outbox", "resume", str(shop.id)])
    assert resumed.output == f"Queue of account {shop.id} resumed.\n"
    assert [line.paused for line in ext.outbox_status()] == [False, False]


def test_the_message_log_page_names_the_new_states(admin_site, add_account, make_smtp_server):
    site = admin_site.site
    with site.app.app_context():
        site.ext.add_account(
            check=False,
            sender_email="shop@example.com",
            host="127.0.0.1",
            port=1,
            security="none",
            auth="none",
        )
        queue_letters(site.ext, site.mail, 2, "shop@example.com")
        message_log(site.app).claim(1)
        site.ext.cancel_queued()
    client = site.app.test_client()
    client.get("/test-login/admin")

    page = client.get("/admin/smtp-accounts/messages/").get_data(as_text=True)

    assert ">taken by a worker</span>" in page and ">cancelled</span>" in page
