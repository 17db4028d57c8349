"""The settings read of every send: the revision on a pooled DBAPI connection, the row when it moved.

The letters show which route the settings chose: the account's server, or
Flask-Mail's own (``smtp_server``) when routing is off.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import pytest
import sqlalchemy as sa
from apps import make_site
from flask_mail import Message

from flask_smtp_accounts.testing import SMTPServer


def send(mail: Any, subject: str) -> None:
    mail.send(Message(subject, sender="hello@example.com", recipients=["bob@example.org"], body="Hello."))


@pytest.fixture
def account_server(add_account: Any, make_smtp_server: Any) -> SMTPServer:
    server: SMTPServer = make_smtp_server()
    add_account(server)
    return server


def subjects(server: SMTPServer, count: int) -> list[str]:
    return [r.message["Subject"] for r in server.wait_for(count)]


def test_a_setting_changed_behind_the_extension_is_used_at_the_next_send(db, ext, mail, account_server, smtp_server):
    send(mail, "routed")
    table = ext.Settings.__table__
    with db.engine.begin() as conn:  # as another process, or a migration, would
        conn.execute(table.update().values(enabled=False, revision=table.c.revision + 1))

    send(mail, "not routed")

    assert subjects(account_server, 1) == ["routed"]
    assert subjects(smtp_server, 1) == ["not routed"]


def test_without_a_settings_row_the_defaults_apply_until_one_is_saved(db, ext, mail, account_server, smtp_server):
    send(mail, "routed")
    with db.engine.begin() as conn:
        conn.execute(ext.Settings.__table__.delete())

    send(mail, "defaults: routing off")
    ext.update_settings(enabled=True)
    send(mail, "routed again")

    assert subjects(account_server, 2) == ["routed", "routed again"]
    assert subjects(smtp_server, 1) == ["defaults: routing off"]


def test_a_dropped_settings_table_says_how_to_fix_it(db, ext, mail, account_server):
    send(mail, "routed")
    ext.flush_message_log()
    with db.engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE {ext.Settings.__table__.name}"))

    with pytest.raises(RuntimeError, match=r"create them with db\.create_all\(\)"):
        send(mail, "lost")

    assert subjects(account_server, 1) == ["routed"]


def reader(app: Any) -> Any:
    """The connection the directory keeps for the revision query of every send."""
    return app.extensions["smtp_accounts"].directory._reader


def test_a_dead_pooled_connection_is_discarded_and_the_letter_still_goes(app, db, ext, mail, account_server, caplog):
    send(mail, "before")
    invalidated: list[Any] = []

    def die(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        dbapi_connection.close()  # as a database server that restarted between two sends

    sa.event.listen(db.engine.pool, "invalidate", lambda conn, record, err: invalidated.append(err))
    sa.event.listen(db.engine.pool, "checkout", die, once=True)
    with reader(app)._lock:  # another thread is reading on the kept connection: this one takes the pool's
        send(mail, "after")

    assert subjects(account_server, 2) == ["before", "after"]
    assert len(invalidated) == 1, "the dead connection went back to the pool"
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text  # not left to the pool's reset


def test_a_dead_kept_connection_is_replaced_and_the_letters_still_go(app, ext, mail, account_server, caplog):
    send(mail, "first")  # the first read of the settings is the whole row, through Core
    send(mail, "before")
    dead = reader(app)._connection
    assert dead is not None
    dead.close()  # as a database server that restarted between two sends

    send(mail, "after")  # read through the pool
    send(mail, "later")  # on a new kept connection

    assert subjects(account_server, 4) == ["first", "before", "after", "later"]
    assert reader(app)._connection is not None and reader(app)._connection is not dead
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text


def test_the_kept_connection_is_outside_the_pool(app, db, ext, mail, account_server):
    send(mail, "first")
    send(mail, "second")
    kept = reader(app)._connection
    pool = db.engine.pool

    assert kept is not None
    assert pool.checkedout() == 0, "a send left a pooled connection checked out"
    db.engine.dispose()  # as a site may, e.g. after forking
    send(mail, "after dispose")
    assert subjects(account_server, 3) == ["first", "second", "after dispose"]


def test_an_in_memory_database_is_not_split_by_the_kept_connection(tmp_path, encryption_key, make_smtp_server, smtp_server):
    """SQLite in memory is one shared connection: taking it out of the pool would lose the database."""
    site = make_site(tmp_path / "memory", SQLALCHEMY_DATABASE_URI="sqlite://", SMTP_ACCOUNTS_ENCRYPTION_KEYS=encryption_key,
                     MAIL_PORT=smtp_server.port)
    server = make_smtp_server()
    with site.app.app_context():
        site.ext.add_account(check=False, sender_email="hello@example.com", host=server.host, port=server.port,
                             security="none", auth="none")
        send(site.mail, "routed")
        site.ext.update_settings(enabled=False)
        send(site.mail, "not routed")
        assert site.app.extensions["smtp_accounts"].directory._reader._connection is None
        site.db.session.remove()
        site.db.engine.dispose()

    assert subjects(server, 1) == ["routed"]
    assert subjects(smtp_server, 1) == ["not routed"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_worker_reads_on_its_own_connection(app, db, ext, mail, account_server):
    send(mail, "parent, first")
    send(mail, "parent, before the fork")
    parents = reader(app)._connection
    assert parents is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork() of a process with threads
        pid = os.fork()
    if pid == 0:
        code = 1
        try:
            db.engine.dispose(close=False)
            if reader(app)._connection is None:  # the parent's is not used in the worker
                send(mail, "worker")
                kept = reader(app)._connection
                code = 0 if kept is not None and kept is not parents else 3
            else:
                code = 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    send(mail, "parent, after the fork")

    assert os.waitstatus_to_exitcode(status) == 0
    assert reader(app)._connection is parents
    assert sorted(subjects(account_server, 4)) == [
        "parent, after the fork", "parent, before the fork", "parent, first", "worker"
    ]
