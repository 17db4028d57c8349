"""Building a real site for tests: Flask, Flask-SQLAlchemy, Flask-Mail, the extension.

The database is a SQLite file in the site's instance folder, or, when the
environment variable :data:`DATABASE_URL_VARIABLE` holds a URL, that
database (PostgreSQL, MySQL/MariaDB...). There, each instance folder of a
test still has a database of its own, as its own SQLite file would be: the
folder named ``instance`` uses the URL's own schema, any other folder a
schema (PostgreSQL) or database (MySQL) named ``<database>_<folder>``,
made on first use. :func:`empty_databases` drops them all again.
"""

from __future__ import annotations

import os
import pathlib
import re
import threading
import typing as t
from dataclasses import dataclass

import sqlalchemy as sa
from flask import Flask
from flask_mail import Mail
from flask_sqlalchemy import SQLAlchemy

from flask_smtp_accounts import SMTPAccounts

#: The environment variable holding the URL of the database the suite runs on; unset or empty: SQLite.
DATABASE_URL_VARIABLE = "SMTP_ACCOUNTS_TEST_DATABASE_URL"
#: The instance folder whose database is the URL's own schema.
MAIN_INSTANCE = "instance"
#: How long the clean-up waits for a lock held by a connection a test left open.
LOCK_TIMEOUT_S = 30


@dataclass
class Site:
    app: Flask
    db: SQLAlchemy
    mail: Mail
    ext: SMTPAccounts


#: Every site this process built, so that the clean-up can close what a test left open.
_made: list[Site] = []


def server_url() -> sa.URL | None:
    """The URL of the database server the suite runs on; ``None``: SQLite files."""
    url = os.environ.get(DATABASE_URL_VARIABLE, "").strip()
    return sa.make_url(url) if url else None


def dialect_name() -> str:
    """``sqlite``, ``postgresql``, ``mysql`` (MariaDB included)..."""
    url = server_url()
    return "sqlite" if url is None else url.get_backend_name().replace("mariadb", "mysql")


def _namespace(url: sa.URL, instance: pathlib.Path) -> str | None:
    """The schema (PostgreSQL) or database (MySQL) of an instance folder; ``None``: the URL's own."""
    if instance.name == MAIN_INSTANCE:
        return None
    name = f"{url.database}_{re.sub(r'[^a-z0-9_]', '_', instance.name.lower())}"
    return name[:63]


def database_url(instance: pathlib.Path) -> str:
    """The database of the site whose instance folder is ``instance``, made if it is missing."""
    url = server_url()
    if url is None:
        return f"sqlite:///{instance / 'site.db'}"
    namespace = _namespace(url, instance)
    if namespace is None:
        return url.render_as_string(hide_password=False)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{namespace}"'))
            else:
                conn.execute(sa.text(f"CREATE DATABASE IF NOT EXISTS `{namespace}`"))
    finally:
        engine.dispose()
    if url.get_backend_name() == "postgresql":
        url = url.update_query_dict({"options": f"-csearch_path={namespace}"})
    else:
        url = url.set(database=namespace)
    return url.render_as_string(hide_password=False)


def empty_databases() -> None:
    """Close every site's connections, then drop every table and extra schema of the server.

    A no-op on SQLite, whose files live in the test's own ``tmp_path``.
    """
    for thread in threading.enumerate():
        if thread.name == "smtp-accounts-alerts":
            thread.join(30)  # an alert delivery still writing would hold a connection past the dispose
    while _made:
        site = _made.pop()
        with site.app.app_context():
            site.db.session.remove()
            site.db.engine.dispose()
    url = server_url()
    if url is None:
        return
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            postgresql = conn.dialect.name == "postgresql"
            assert url.database, "the server's URL names its database"
            pattern = url.database.replace("_", r"\_") + r"\_%"
            if postgresql:
                conn.execute(sa.text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_S}s'"))
                extra = conn.scalars(
                    sa.text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :p"), {"p": pattern}
                )
            else:
                conn.execute(sa.text(f"SET SESSION lock_wait_timeout = {LOCK_TIMEOUT_S}"))
                extra = conn.scalars(sa.text("SHOW DATABASES LIKE :p"), {"p": pattern})
            for name in list(extra):
                drop = f'DROP SCHEMA "{name}" CASCADE' if postgresql else f"DROP DATABASE `{name}`"
                conn.execute(sa.text(drop))
            # The tables of the URL's own schema, named by one catalog query and dropped by one
            # statement: reflecting them first (what MetaData.reflect does) took most of a test's
            # teardown on a server, and the end is the same, every table gone.
            if postgresql:
                names = conn.scalars(
                    sa.text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
                )
            else:
                names = conn.scalars(
                    sa.text(
                        "SELECT table_name FROM information_schema.tables"
                        " WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'"
                    )
                )
            quoted = ", ".join(conn.dialect.identifier_preparer.quote_identifier(n) for n in names)
            if quoted:
                if not postgresql:
                    # One statement drops them all whatever their foreign keys, as PostgreSQL's does.
                    conn.execute(sa.text("SET SESSION foreign_key_checks = 0"))
                conn.execute(sa.text(f"DROP TABLE {quoted}"))
    finally:
        engine.dispose()


def make_site(instance: pathlib.Path, *, enabled: bool = True, **config: t.Any) -> Site:
    """A site whose database is the one of ``instance`` (see :func:`database_url`), with the extension set up.

    ``config`` overrides the app config (``SMTP_ACCOUNTS_ENCRYPTION_KEYS``,
    ``MAIL_SERVER``, ``MAIL_PORT``...). With ``enabled`` the routing setting
    is switched on, as an administrator would.
    """
    instance.mkdir(parents=True, exist_ok=True)
    app = Flask("site", instance_path=str(instance))
    app.config.update(
        SECRET_KEY="test-secret",
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=1,
    )
    app.config.update(config)
    if "SQLALCHEMY_DATABASE_URI" not in config:
        app.config["SQLALCHEMY_DATABASE_URI"] = database_url(instance)
    db = SQLAlchemy(app)
    mail = Mail(app)
    ext = SMTPAccounts(app, db=db)
    made = Site(app, db, mail, ext)
    _made.append(made)
    with app.app_context():
        db.create_all()
        if enabled:
            ext.update_settings(enabled=True)
    return made


def stored_rows(app: Flask, sql: str, **params: t.Any) -> list[dict[str, t.Any]]:
    """What the site's database holds, read with plain SQL past the extension (``:name`` parameters)."""
    with app.app_context():
        with app.extensions["sqlalchemy"].engine.connect() as conn:
            return [dict(row) for row in conn.execute(sa.text(sql), params).mappings()]
