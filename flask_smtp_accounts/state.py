"""What the extension keeps for one app: its tables, keys, and the objects that own each job.

:class:`AppState` lives in ``app.extensions["smtp_accounts"]``. It sits below the
extension object and the admin and CLI faces, so that the modules doing the
work (checks, retry runs, the outbox) can be handed it without importing the
extension: the package's imports run one way.
"""

from __future__ import annotations

import functools
import smtplib
import typing as t
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from .alerts import Alerts
from .config import Config
from .connection import open_connection
from .connection_slots import ConnectionSlots
from .crypto import Vault
from .delivery import DefaultRoute, Dispatcher
from .directory import Directory
from .health import Health
from .mail_stats import MailStats
from .message_log import LEASE, MessageLog
from .models import SETTINGS_ID, AccountInfo, Models
from .oauth2 import AccessTokens
from .quotas import Quotas
from .settings import SettingsInfo
from .smtp_logs import SMTPLogs

if t.TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy


class AppState:
    """What the extension keeps for one app (``app.extensions["smtp_accounts"]``)."""

    def __init__(self, ext: object, db: SQLAlchemy, models: Models, config: Config) -> None:
        #: The :class:`~flask_smtp_accounts.SMTPAccounts` that made this state. Typed ``object`` here:
        #: this module sits below the extension, and the faces that call its API (admin, CLI) cast it.
        self.ext = ext
        self.db = db
        self.models = models
        self.config = config
        self.vault = Vault(config.encryption_keys)
        self.directory = Directory(models, self.engine)
        self.message_log = MessageLog(
            models,
            self.engine,
            blocked=self._site_holds_the_write_lock,
            claim_lease=timedelta(seconds=config.claim_lease_s) if config.claim_lease_s else LEASE,
        )
        self.health = Health(models, self.engine)
        self.quotas = Quotas(models, self.engine)
        self.connection_slots = ConnectionSlots(models, self.engine)
        self.smtp_logs = SMTPLogs(config.log_dir)
        self.stats = MailStats(models, self.engine)
        self.alerts = Alerts(models, self.engine, self.vault, self.stats)
        self.access_tokens = AccessTokens(
            self.vault, self._store_refresh_token, providers=config.oauth2_providers
        )

    def engine(self) -> t.Any:
        return self.db.engines[self.config.bind_key]

    def _store_refresh_token(self, account_id: int, ciphertext: str) -> None:
        """Store a rotated refresh token (already encrypted) on its account, in a transaction of its own.

        Its own transaction, because the rotation happened whether or not the
        site's session commits. A plain UPDATE, not the ORM: the account's
        ``updated_at`` stays (a change there clears its logs), but the settings
        revision is bumped so that every process reads the new token.
        """
        account = self.models.Account.__table__
        settings = self.models.Settings.__table__
        with self.engine().begin() as conn:
            conn.execute(
                sa.update(account)
                .where(account.c.id == account_id)
                .values(oauth_refresh_token_encrypted=ciphertext)
            )
            conn.execute(
                sa.update(settings)
                .where(settings.c.id == SETTINGS_ID)
                .values(revision=settings.c.revision + 1)
            )

    def _site_holds_the_write_lock(self) -> str | None:
        """Why writing a row now would wait on this very thread, or ``None``.

        SQLite has one writer at a time. When the site's own session (in
        this thread) has written to the database the extension's tables
        live in and not committed yet, a row written through another
        connection would wait for a commit that cannot come before the
        letter is sent: a stall, then an error. Say so at once instead.
        """
        engine = self.engine()
        if engine.dialect.name != "sqlite":
            return None
        session = self.db.session()
        if not session.in_transaction():
            return None
        connection = session.connection(bind_arguments={"bind": engine})
        dbapi_connection = connection.connection.dbapi_connection
        if not getattr(dbapi_connection, "in_transaction", False):
            return None
        return (
            "the site's own database session holds uncommitted writes to this SQLite database, which allows one"
            " writer at a time: commit (or roll back) before sending, or keep the extension's tables in a"
            " database of their own (SMTP_ACCOUNTS_BIND_KEY)"
        )

    def dispatcher(
        self, settings: SettingsInfo, *, default: DefaultRoute, max_emails: int | None
    ) -> Dispatcher:
        """A dispatcher for one connection block (or one retry run) with these settings."""
        return Dispatcher(
            settings,
            directory=self.directory,
            health=self.health,
            quotas=self.quotas,
            message_log=self.message_log,
            smtp_logs=self.smtp_logs,
            open_account=self._open_account,
            default=default,
            max_emails=max_emails,
            app=current_app._get_current_object(),  # type: ignore[attr-defined]
            slots=self.connection_slots,
        )

    def _open_account(self, account: AccountInfo, transcript: t.Any, timeout: float) -> smtplib.SMTP:
        return open_connection(
            account,
            functools.partial(self.password_of, account),
            timeout=timeout,
            ca_file=self.config.ca_file,
            ehlo_name=self.config.ehlo_name,
            transcript=transcript,
        )

    def password_of(self, account: AccountInfo) -> str | None:
        return self.vault.decrypt(account.password_encrypted) if account.password_encrypted else None
