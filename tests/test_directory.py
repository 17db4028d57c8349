"""The settings read of every send: the revision on a pooled DBAPI connection, the row when it moved.

The letters show which route the settings chose: the account's server, or
Flask-Mail's own (``smtp_server``) when routing is off.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
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


def test_a_dead_pooled_connection_is_discarded_and_the_letter_still_goes(db, ext, mail, account_server, caplog):
    send(mail, "before")
    invalidated: list[Any] = []

    def die(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        dbapi_connection.close()  # as a database server that restarted between two sends

    sa.event.listen(db.engine.pool, "invalidate", lambda conn, record, err: invalidated.append(err))
    sa.event.listen(db.engine.pool, "checkout", die, once=True)

    send(mail, "after")

    assert subjects(account_server, 2) == ["before", "after"]
    assert len(invalidated) == 1, "the dead connection went back to the pool"
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text  # not left to the pool's reset
