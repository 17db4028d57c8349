"""One truth in the database: every process skips a cooling account, a fix lifts it, caches never outlive a change.

The other processes are real ones (``subprocess``) on the same SQLite file;
the dead server counts the connections it is offered.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any, cast

import pytest
import sqlalchemy as sa
from apps import make_site
from flask_mail import Message
from misbehaving import Refuse

from flask_smtp_accounts import DeliveryError
from flask_smtp_accounts.testing import ClosingServer

TESTS = Path(__file__).parent

ONE_LETTER = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from apps import make_site
    from flask_mail import Message
    from flask_smtp_accounts import DeliveryError

    site = make_site(__import__("pathlib").Path(sys.argv[2]), enabled=False, **json.loads(sys.argv[3]))
    with site.app.app_context():
        try:
            site.mail.send(Message("Hi", sender="shop@example.com", recipients=["bob@example.org"], body="x"))
            print("sent")
        except DeliveryError as err:
            print(err.stage)
        site.db.session.remove()
        site.db.engine.dispose()
    """
)


def letter(subject: str = "Hi") -> Message:
    return Message(subject, sender="shop@example.com", recipients=["bob@example.org"], body="Hello.")


def test_four_processes_in_turn_offer_a_dead_server_one_connection_in_all(
    site, ext, add_account, encryption_key, smtp_server
):
    ext.update_settings(cooldown_s=3600)
    config = {"SMTP_ACCOUNTS_ENCRYPTION_KEYS": encryption_key, "MAIL_PORT": smtp_server.port}
    with ClosingServer() as dead:
        ext.add_account(
            check=False,
            sender_email="shop@example.com",
            host=dead.host,
            port=dead.port,
            security="none",
            auth="none",
        )
        stages = [
            subprocess.run(
                [sys.executable, "-c", ONE_LETTER, str(TESTS), site.app.instance_path, json.dumps(config)],
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            ).stdout.strip()
            for _ in range(4)
        ]
        assert dead.connections == 1
    assert stages == ["connect", "cool-down", "cool-down", "cool-down"]
    assert [m.status for m in ext.messages().items] == ["failed"] * 4


def test_failures_noted_at_once_by_many_writers_are_counted_without_a_key_error(
    app, ext, add_account, smtp_server
):
    account = add_account(smtp_server, sender_email="shop@example.com")
    state = app.extensions["smtp_accounts"]
    err = DeliveryError("connect", "refused", account_id=account.id)
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def fail() -> None:
        start.wait()
        try:
            with app.app_context():
                state.health.failed(account, err, 60)
        except BaseException as caught:  # noqa: BLE001 - reported by the assert below
            errors.append(caught)

    threads = [threading.Thread(target=fail) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    assert ext.account_health()[account.id].failures == 4


def test_a_fixed_account_is_used_at_once_and_a_resend_goes_through_its_new_port(
    ext, mail, add_account, make_smtp_server
):
    """Issue 12, 8(a): the cool-down of the old port must not block the account after it was saved with a new one."""
    ext.update_settings(cooldown_s=3600)
    working = make_smtp_server()
    with ClosingServer() as dead:
        account = add_account(working, sender_email="shop@example.com", port=dead.port)
        with pytest.raises(DeliveryError) as failed:
            mail.send(letter())
        assert failed.value.stage == "connect"
        assert ext.account_health()[account.id].cooling_down

        ext.update_account(account.id, port=working.port)

        assert not ext.account_health()[account.id].cooling_down
        row = ext.resend_message(failed.value.record_id)
        assert dead.connections == 1
    assert (row.status, row.attempts) == ("sent", 2)
    assert [entry["result"] for entry in row.history] == ["sent"] or all(
        entry.get("stage") != "cool-down" for entry in row.history
    )
    assert [r.message["Subject"] for r in working.wait_for(1)] == ["Hi"]


def test_a_check_that_passes_lifts_the_cool_down_in_every_process(ext, mail, add_account, make_smtp_server):
    ext.update_settings(cooldown_s=3600)
    server = make_smtp_server(handler_hooks=Refuse("MAIL", "421 4.3.2 Shutting down", times=1))
    account = add_account(server, sender_email="shop@example.com")
    with pytest.raises(DeliveryError):
        mail.send(letter("First"))
    assert ext.account_health()[account.id].cooling_down

    assert ext.check_account(account).ok

    assert not ext.account_health()[account.id].cooling_down
    mail.send(letter("Second"))
    assert [r.message["Subject"] for r in server.wait_for(1)] == ["Second"]


def test_a_candidates_query_that_raced_a_switch_off_is_never_used_afterwards(
    app, db, ext, mail, add_account, make_smtp_server
):
    """A thread pauses right after its candidates query while the chosen account is switched off."""
    kept_server, switched_off_server = make_smtp_server(), make_smtp_server()
    add_account(kept_server, sender_email="shop@example.com")
    switched_off = add_account(switched_off_server, sender_email="shop@example.com")  # the largest id: chosen
    queried, resume = threading.Event(), threading.Event()
    racing: list[threading.Thread] = []
    after_query: dict[int, bool] = {}

    def note_query(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if racing and threading.current_thread() is racing[0] and "email_key" in statement:
            after_query[threading.get_ident()] = True

    def pause(dbapi_connection: Any, record: Any) -> None:
        if after_query.pop(
            threading.get_ident(), False
        ):  # the query's connection is back: pause before caching
            queried.set()
            resume.wait(30)

    sa.event.listen(db.engine, "after_cursor_execute", note_query)
    sa.event.listen(db.engine.pool, "checkin", pause)

    def send_from_another_thread() -> None:
        with app.app_context():
            mail.send(letter("Racing"))

    racing.append(threading.Thread(target=send_from_another_thread))
    racing[0].start()
    assert queried.wait(30)
    ext.update_account(switched_off.id, active=False, check=False)
    mail.send(letter("After the switch"))
    resume.set()
    racing[0].join(30)
    for n, sender in enumerate(["Shop <shop@example.com>", ("Shop", "shop@example.com"), "SHOP@example.com"]):
        mail.send(Message(f"Later {n}", sender=sender, recipients=["bob@example.org"], body="Hello."))

    assert [r.message["Subject"] for r in switched_off_server.wait_for(1)] == ["Racing"]
    assert [r.message["Subject"] for r in kept_server.wait_for(4)] == [
        "After the switch",
        "Later 0",
        "Later 1",
        "Later 2",
    ]


def test_an_app_whose_engine_is_disposed_holds_no_connection_and_no_thread(
    tmp_path, encryption_key, make_smtp_server
):
    server = make_smtp_server()
    threads_before = set(threading.enumerate())
    opened: list[int] = []
    closed: list[int] = []
    listeners = [
        ("connect", lambda conn, record: opened.append(id(conn))),
        ("close", lambda conn, record: closed.append(id(conn))),
        ("close_detached", lambda conn: closed.append(id(conn))),
    ]
    for name, listener in listeners:  # every pool, from the app's first connection on
        sa.event.listen(sa.pool.Pool, name, listener)
    try:
        send_in_apps_built_one_after_another(tmp_path, encryption_key, server)
    finally:
        for name, listener in listeners:
            sa.event.remove(sa.pool.Pool, name, listener)
    gc.collect()

    assert len(server.wait_for(10)) == 10
    assert opened and sorted(opened) == sorted(closed), "connections left open after dispose"
    assert [t.name for t in set(threading.enumerate()) - threads_before] == []


def send_in_apps_built_one_after_another(tmp_path: Path, encryption_key: str, server: Any) -> None:
    for n in range(5):
        site = make_site(
            tmp_path / f"site{n}", SMTP_ACCOUNTS_ENCRYPTION_KEYS=encryption_key, MAIL_PORT=server.port
        )
        with site.app.app_context():
            engine = site.db.engines[None]
            site.ext.add_account(
                check=False,
                sender_email="shop@example.com",
                host=server.host,
                port=server.port,
                security="none",
                auth="none",
            )
            with site.mail.connect() as conn:
                conn.send(letter("Routed"))
                conn.send(
                    Message("Own", sender="nobody@example.net", recipients=["bob@example.org"], body="x")
                )
            assert [m.status for m in site.ext.messages().items] == ["sent", "sent"]
            site.db.session.remove()
            site.db.engine.dispose()
            assert cast(sa.pool.QueuePool, engine.pool).checkedout() == 0
