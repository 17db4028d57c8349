"""Every reply of a server ends within the timeout and stays under a size cap.

A server that drips its reply a byte at a time, or sends one that never
ends, must not hold ``mail.send`` (a web worker) for longer than the
account's timeout, nor grow the process: the send fails at its stage and
the letter goes on to the backup. Each send runs in a thread joined with a
generous limit, so that a hang fails the test instead of stalling the run.
"""

from __future__ import annotations

import threading
import typing as t

import pytest
from flask_mail import Message
from misbehaving import HostileServer, HostileTokenEndpoint

#: Long enough for any loaded machine; a send that still runs after it waits on the server for ever.
HANG_LIMIT_S = 60.0

#: The stage each hostile reply fails, and the SMTP command named.
STAGES = {"greeting": ("connect", None), "ehlo": ("connect", None), "data": ("send", "DATA")}
REASONS = {"drip": ": timeout", "endless": "the server's reply went past 512 lines or 64 KiB"}


def finishes(app: t.Any, call: t.Callable[[], t.Any]) -> t.Any:
    """``call()`` in a thread with its own app context; fails when it is still running after the limit."""
    outcome: dict[str, t.Any] = {}

    def run() -> None:
        with app.app_context():
            try:
                outcome["value"] = call()
            except BaseException as err:  # noqa: BLE001 - handed to the test
                outcome["error"] = err

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(HANG_LIMIT_S)
    assert not thread.is_alive(), f"still waiting on the server after {HANG_LIMIT_S:.0f} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


#: The deadline where a healthy backup must also answer within it: long enough on a loaded machine,
#: short enough that a hostile server's drip costs a few seconds.
BACKUP_TIMEOUT_S = 3


@pytest.fixture(autouse=True)
def one_second(ext: t.Any) -> None:
    ext.update_settings(timeout_s=1)


def plain(server: t.Any) -> dict[str, t.Any]:
    return {"host": server.host, "port": server.port, "security": "none", "auth": "none"}


@pytest.mark.parametrize("how", ["drip", "endless"])
@pytest.mark.parametrize("stage", ["greeting", "ehlo", "data"])
def test_a_reply_that_never_ends_fails_its_stage_and_the_backup_delivers(
    stage, how, app, mail, ext, make_smtp_server
):
    ext.update_settings(timeout_s=BACKUP_TIMEOUT_S)
    backup_server = make_smtp_server()
    backup = ext.add_account(sender_email="shop@example.com", check=False, **plain(backup_server))
    with HostileServer(stage, how) as hostile:
        primary = ext.add_account(
            sender_email="shop@example.com", check=False, backup_ids=[backup.id], **plain(hostile)
        )
        letter = Message("Order 1", sender="shop@example.com", recipients=["ann@example.org"], body="Thanks.")
        finishes(app, lambda: mail.send(letter))

    [got] = backup_server.wait_for(1)
    assert got.message["Message-ID"] == letter.msgId
    [row] = ext.messages().items
    assert (row.status, row.account_id, row.chosen_account_id) == ("sent", backup.id, primary.id)
    failed = row.history[0]
    assert (failed["account_id"], failed["stage"]) == (primary.id, STAGES[stage][0])
    assert REASONS[how] in failed["error"]


@pytest.mark.parametrize("how", ["drip", "endless"])
def test_a_send_without_backup_raises_at_the_stage_and_logs_the_letter(how, app, mail, ext):
    from flask_smtp_accounts import DeliveryError

    with HostileServer("data", how) as hostile:
        account = ext.add_account(sender_email="shop@example.com", check=False, **plain(hostile))
        letter = Message("Order 1", sender="shop@example.com", recipients=["ann@example.org"], body="Thanks.")
        with pytest.raises(DeliveryError) as raised:
            finishes(app, lambda: mail.send(letter))

    err = raised.value
    assert (err.stage, err.command, err.account_id) == ("send", "DATA", account.id)
    assert REASONS[how] in str(err)
    row = ext.get_message(err.record_id)
    assert (row.status, row.error_stage) == ("failed", "send") and row.resendable


@pytest.mark.parametrize("how", ["drip", "endless"])
def test_a_check_against_a_greeting_that_never_ends_is_a_failed_result(how, app, ext):
    with HostileServer("greeting", how) as hostile:
        values = {"sender_email": "shop@example.com", **plain(hostile)}
        result = finishes(app, lambda: ext.check_account(values, send_test=False))

    assert not result.ok
    assert result.stage == "connect"
    assert REASONS[how] in result.message


TOKEN_REASONS = {
    "drip": "the token endpoint did not answer within 1 s",
    "endless": "the token endpoint's answer went past 256 KiB",
}


def oauth2_fields(smtp: t.Any, token_url: str) -> dict[str, t.Any]:
    return {
        "sender_email": "shop@example.com",
        "host": smtp.host,
        "port": smtp.port,
        "security": "starttls",
        "auth": "oauth2",
        "login": "shop@example.com",
        "oauth_provider": "custom",
        "oauth_flow": "app",
        "oauth_token_url": token_url,
        "oauth_scope": "smtp",
        "oauth_client_id": "client",
        "oauth_client_secret": "client secret",
    }


@pytest.fixture
def oauth_smtp(make_smtp_server: t.Any, certs: t.Any) -> t.Any:
    """STARTTLS and AUTH XOAUTH2 (no token is good: the tests never get one)."""
    return make_smtp_server(
        tls="starttls", cert=(certs.server_cert, certs.server_key), xoauth2=lambda login, token: False
    )


@pytest.mark.parametrize("how", ["drip", "endless"])
def test_a_token_answer_that_never_ends_fails_the_check_at_the_token_stage(how, app, ext, oauth_smtp):
    with HostileTokenEndpoint(how) as endpoint:
        values = oauth2_fields(oauth_smtp, endpoint.token_url)
        result = finishes(app, lambda: ext.check_account(values, send_test=False))

    assert (result.ok, result.stage) == (False, "token")
    assert TOKEN_REASONS[how] in result.message
    assert oauth_smtp.auth_attempts == []


@pytest.mark.parametrize("how", ["drip", "endless"])
def test_a_token_answer_that_never_ends_sends_through_the_backup(
    how, app, mail, ext, oauth_smtp, make_smtp_server
):
    ext.update_settings(timeout_s=BACKUP_TIMEOUT_S)
    backup_server = make_smtp_server()
    backup = ext.add_account(sender_email="shop@example.com", check=False, **plain(backup_server))
    with HostileTokenEndpoint(how) as endpoint:
        primary = ext.add_account(
            check=False, backup_ids=[backup.id], **oauth2_fields(oauth_smtp, endpoint.token_url)
        )
        letter = Message("Order 1", sender="shop@example.com", recipients=["ann@example.org"], body="Thanks.")
        finishes(app, lambda: mail.send(letter))

    [got] = backup_server.wait_for(1)
    assert got.message["Message-ID"] == letter.msgId
    [row] = ext.messages().items
    assert (row.status, row.account_id) == ("sent", backup.id)
    assert (row.history[0]["account_id"], row.history[0]["stage"]) == (primary.id, "token")
    assert TOKEN_REASONS[how].replace("1 s", f"{BACKUP_TIMEOUT_S} s") in row.history[0]["error"]
