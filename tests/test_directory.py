"""The settings read of every block: a change made behind the extension is used at the next send.

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


def test_a_setting_changed_behind_the_extension_is_used_at_the_next_send(
    db, ext, mail, account_server, smtp_server
):
    send(mail, "routed")
    table = ext.Settings.__table__
    with db.engine.begin() as conn:  # as another process, or a migration, would
        conn.execute(table.update().values(enabled=False, revision=table.c.revision + 1))

    send(mail, "not routed")

    assert subjects(account_server, 1) == ["routed"]
    assert subjects(smtp_server, 1) == ["not routed"]


def test_without_a_settings_row_the_defaults_apply_until_one_is_saved(
    db, ext, mail, account_server, smtp_server
):
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
    with db.engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE {ext.Settings.__table__.name}"))

    with pytest.raises(RuntimeError, match=r"create them with db\.create_all\(\)"):
        send(mail, "lost")

    assert subjects(account_server, 1) == ["routed"]


def reader(app: Any) -> Any:
    """The connection the directory keeps for the revision query of every send."""
    return app.extensions["smtp_accounts"].directory._reader
