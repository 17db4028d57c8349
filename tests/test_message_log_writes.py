"""How delivered letters' rows reach the database: one executemany per writer pass, any paramstyle.

Delivered rows are inserted with an INSERT compiled once per dialect and
values converted by the column types; undelivered ones through Core. Both
must read back the same, and filter the same (on SQLite a time is text).
"""

from __future__ import annotations

import os
import signal
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from apps import Site, make_site
from flask_mail import Message

from flask_smtp_accounts import DeliveryError
from flask_smtp_accounts.models import utcnow
from flask_smtp_accounts.testing import SMTPServer, free_port

#: qmark and named: this module's own INSERT; core: Core's executemany (as for psycopg2, which batches it).
WRITES = ["qmark", "named", "core"]


@pytest.fixture(params=WRITES)
def site(request: pytest.FixtureRequest, tmp_path: Path, encryption_key: str, smtp_server: SMTPServer) -> Iterator[Site]:
    config: dict[str, Any] = {"SMTP_ACCOUNTS_ENCRYPTION_KEYS": encryption_key, "MAIL_PORT": smtp_server.port}
    if request.param == "named":
        config["SQLALCHEMY_ENGINE_OPTIONS"] = {"paramstyle": "named"}
    made = make_site(tmp_path / "instance", **config)
    with made.app.app_context():
        if request.param == "core":
            made.db.engine.dialect.use_insertmanyvalues_wo_returning = True  # type: ignore[attr-defined]
        yield made
        made.db.session.remove()
        made.db.engine.dispose()


def letter(subject: str, sender: str = "shop@example.com", **kwargs: Any) -> Message:
    kwargs.setdefault("recipients", ["ann@example.org"])
    return Message(subject, sender=sender, body="Thanks for your order.", **kwargs)


def test_delivered_and_undelivered_rows_read_back_alike(site, make_smtp_server):
    ext, mail = site.ext, site.mail
    server = make_smtp_server()
    ext.update_settings(keep_bodies=True)
    ext.add_account(check=False, sender_email="shop@example.com", host=server.host, port=server.port,
                    security="none", auth="none")
    ext.add_account(check=False, sender_email="broken@example.com", host="127.0.0.1", port=free_port(),
                    security="none", auth="none")
    before = utcnow() - timedelta(seconds=1)

    mail.send(letter("Delivered", extra_headers={"List-Unsubscribe": "<mailto:stop@example.com>"},
                     recipients=["ann@example.org", "bob@example.org"]))
    with pytest.raises(DeliveryError):
        mail.send(letter("Undelivered", sender="broken@example.com"))

    failed, sent = ext.messages(since=before).items
    [received] = server.wait_for(1)
    assert (sent.subject, sent.status, sent.bulk, sent.attempts) == ("Delivered", "sent", True, 1)
    assert sorted(sent.recipients) == ["ann@example.org", "bob@example.org"]
    assert sent.body is not None and sent.body.rstrip(b"\r\n") == received.data.rstrip(b"\r\n")
    assert sent.created_at == sent.updated_at and before <= sent.created_at <= utcnow()
    assert (sent.pending, sent.refused, sent.history, sent.options) == ([], {}, [], ([], []))
    assert (sent.error, sent.next_attempt_at, sent.claimed_until) == (None, None, None)
    assert (failed.subject, failed.status, failed.bulk) == ("Undelivered", "failed", False)
    assert before <= failed.created_at <= utcnow()
    assert [m.subject for m in ext.messages(since=sent.created_at).items] == ["Undelivered", "Delivered"]
    assert [m.subject for m in ext.messages(until=failed.created_at).items] == ["Delivered"]


def test_the_rows_of_single_sends_are_written_with_one_statement(site, smtp_server):
    ext, mail, db = site.ext, site.mail, site.db
    ext.add_account(check=False, sender_email="shop@example.com", host=smtp_server.host, port=smtp_server.port,
                    security="none", auth="none")
    site.app.extensions["smtp_accounts"].writer.linger_s = 60  # one writer pass, however slow the machine
    inserts: list[Any] = []

    def record(conn: Any, cursor: Any, sql: str, parameters: Any, context: Any, executemany: bool) -> None:
        if sql.startswith("INSERT INTO smtp_accounts_message"):
            inserts.append(parameters)

    sa.event.listen(db.engine, "before_cursor_execute", record)
    for n in range(20):
        mail.send(letter(f"Order {n}"))
    ext.flush_message_log()
    sa.event.remove(db.engine, "before_cursor_execute", record)

    assert len(inserts) == 1
    assert [m.subject for m in ext.messages().items] == [f"Order {n}" for n in reversed(range(20))]


def test_a_failed_pass_writes_each_job_alone_and_keeps_the_rows(site, smtp_server, caplog):
    ext, mail = site.ext, site.mail
    ext.add_account(check=False, sender_email="shop@example.com", host=smtp_server.host, port=smtp_server.port,
                    security="none", auth="none")
    state = site.app.extensions["smtp_accounts"]
    state.writer.linger_s = 60

    def broken(conn: Any) -> None:
        raise RuntimeError("disk full")

    mail.send(letter("Order 0"))
    state.writer.submit(state.engine(), broken)
    mail.send(letter("Order 1"))
    mail.send(letter("Order 2"))
    ext.flush_message_log()

    assert [m.subject for m in ext.messages().items] == ["Order 2", "Order 1", "Order 0"]
    assert "could not write 1 of 4 message log writes: disk full" in caplog.text


def wait_for_child(pid: int, timeout: float) -> int | None:
    """The child's exit code; ``None`` (and the child killed) when it did not end in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_worker_writes_its_own_rows_and_not_its_parents(site, smtp_server):
    ext, mail = site.ext, site.mail
    ext.add_account(check=False, sender_email="shop@example.com", host=smtp_server.host, port=smtp_server.port,
                    security="none", auth="none")
    site.app.extensions["smtp_accounts"].writer.linger_s = 60
    mail.send(letter("parent, before the fork"))  # still waiting in the parent's writer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork() of a process with threads
        pid = os.fork()
    if pid == 0:  # the worker, as a pre-forking server would start it
        code = 1
        try:
            site.db.engine.dispose(close=False)
            mail.send(letter("worker"))
            code = 0 if ext.flush_message_log() else 2
        finally:
            os._exit(code)
    status = wait_for_child(pid, timeout=60)

    assert status == 0, "the worker failed, or hung on a lock its parent's writer held"
    ext.flush_message_log()
    assert sorted(m.subject for m in ext.messages().items) == ["parent, before the fork", "worker"]


def test_the_row_time_is_naive_utc():
    before = datetime.now(UTC).replace(tzinfo=None)
    now = utcnow()
    after = datetime.now(UTC).replace(tzinfo=None)

    assert now.tzinfo is None
    assert before <= now <= after
