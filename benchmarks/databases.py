"""Where each routed app of the benchmark keeps its tables.

By default every app has its own SQLite file in its folder, as a small site
has. Given a server URL (``--database-url``, or the environment variable
``SMTP_ACCOUNTS_BENCH_DATABASE_URL``, else the test suite's
``SMTP_ACCOUNTS_TEST_DATABASE_URL``), every app gets its own schema on that
PostgreSQL database (``bench_<app>``), or its own database on that MySQL or
MariaDB server (``<database>_bench_<app>``), made afresh and dropped at the
end: apps measured side by side must not see each other's accounts.

``--sqlite-wal`` puts each SQLite file in WAL mode with ``synchronous=NORMAL``
(:func:`sqlite_wal`, the README's opt-in for sites): cheaper commits, at the
price of the last commits when the machine loses power (not when the
process is killed).
"""

from __future__ import annotations

import os
import re
import typing as t

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

URL_VARIABLES = ("SMTP_ACCOUNTS_BENCH_DATABASE_URL", "SMTP_ACCOUNTS_TEST_DATABASE_URL")


def url_from_environment() -> str | None:
    """The first of :data:`URL_VARIABLES` that is set."""
    for name in URL_VARIABLES:
        if os.environ.get(name):
            return os.environ[name]
    return None


def sqlite_wal(engine: sa.Engine) -> None:
    """Every new connection of ``engine`` in WAL mode, synced at checkpoints rather than at each commit.

    The recipe of the README (Benchmarks, "SQLite: the two commits"), for any engine.
    """

    @sa.event.listens_for(engine, "connect")
    def wal(dbapi_connection: t.Any, connection_record: t.Any) -> None:
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")


class Databases:
    """Hands out one empty database per app; :meth:`drop` removes those made on a server."""

    def __init__(self, url: str | None, *, wal: bool = False) -> None:
        self.url: URL | None = make_url(url) if url else None
        #: SQLite files in WAL mode with ``synchronous=NORMAL`` (:func:`sqlite_wal`).
        self.wal = wal
        if wal and self.url is not None:
            raise SystemExit("--sqlite-wal is for SQLite files; it cannot be combined with --database-url")
        self._made: list[str] = []
        if self.url is not None and self.url.get_backend_name() not in ("postgresql", "mysql", "mariadb"):
            raise SystemExit(
                f"--database-url: PostgreSQL or MySQL/MariaDB, not {self.url.get_backend_name()}"
            )

    def describe(self) -> str:
        if self.url is None:
            journal = "WAL, synchronous=NORMAL (opt-in)" if self.wal else "default journal, synchronous=FULL"
            return f"SQLite, one file per app, {journal}"
        each = "schema" if self.url.get_backend_name() == "postgresql" else "database"
        return f"{self.url.get_backend_name()} at {self.url.render_as_string(hide_password=True)}, one {each} per app"

    def config(self, folder: str) -> dict[str, t.Any]:
        """Flask-SQLAlchemy settings of a new, empty database for the app living in ``folder``."""
        if self.url is None:
            return {"SQLALCHEMY_DATABASE_URI": "sqlite:///" + os.path.join(folder, "bench.sqlite")}
        name = "bench_" + re.sub(r"\W", "_", os.path.basename(folder)).lower()
        if self.url.get_backend_name() == "postgresql":
            self._execute(f"DROP SCHEMA IF EXISTS {name} CASCADE", f"CREATE SCHEMA {name}")
            self._made.append(name)
            return {
                "SQLALCHEMY_DATABASE_URI": self.url.render_as_string(hide_password=False),
                "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"options": f"-csearch_path={name}"}},
            }
        name = f"{self.url.database}_{name}"
        self._execute(f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}")
        self._made.append(name)
        return {"SQLALCHEMY_DATABASE_URI": self.url.set(database=name).render_as_string(hide_password=False)}

    def tune(self, engine: sa.Engine) -> None:
        """Apply the chosen journal to an app's engine, before it sends (its pooled connections are renewed)."""
        if self.wal:
            sqlite_wal(engine)
            engine.dispose()
            with engine.connect() as conn:
                mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
            if mode != "wal":
                raise SystemExit(f"--sqlite-wal: SQLite kept its {mode} journal")

    def drop(self) -> None:
        """Drop every schema or database made by :meth:`config`."""
        if self.url is None or not self._made:
            return
        drop = (
            "DROP SCHEMA IF EXISTS {} CASCADE"
            if self.url.get_backend_name() == "postgresql"
            else "DROP DATABASE IF EXISTS {}"
        )
        try:
            self._execute(*(drop.format(name) for name in self._made))
        except sa.exc.DBAPIError as error:
            print(
                f"could not drop {', '.join(self._made)} ({error.orig}); the next run drops them", flush=True
            )
        self._made.clear()

    def _execute(self, *statements: str) -> None:
        assert self.url is not None
        engine = sa.create_engine(self.url, poolclass=sa.NullPool)
        try:
            with engine.begin() as conn:
                if self.url.get_backend_name() == "postgresql":
                    # A connection left open in an app (its pool, or one the extension keeps) would
                    # otherwise hold DROP SCHEMA forever.
                    conn.execute(sa.text("SET lock_timeout = '10s'"))
                for statement in statements:
                    conn.execute(sa.text(statement))
        finally:
            engine.dispose()
