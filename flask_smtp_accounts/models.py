"""The extension's tables, declared on the site's own Flask-SQLAlchemy ``db``.

:func:`make_models` builds the classes once per ``db``, so that
``db.create_all()`` and Flask-Migrate see them like the site's own models.
Each is made from a module-level mixin that holds its columns
(``MessageColumns``; Flask-Security's pattern), and :class:`Models` types
each class as its mixin: mypy knows every column, though the classes
themselves are made at run time.
Every change to an account or a setting bumps ``Settings.revision`` in the
same transaction; that is how other processes learn that their caches are
stale.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from flask import current_app
from sqlalchemy import event
from sqlalchemy.orm import Mapped, Mapper, declared_attr, mapped_column

# AccountInfo and its field names are importable from here too, as the package's modules and sites do.
from .account_fields import ACCOUNT_INFO_FIELDS as ACCOUNT_INFO_FIELDS
from .account_fields import OAUTH_SECRETS, secrets_held
from .account_fields import SETTABLE_FIELDS as SETTABLE_FIELDS
from .account_fields import AccountInfo as AccountInfo
from .addresses import email_key
from .alert_tables import (
    AlertChannelColumns,
    AlertColumns,
    AlertEventColumns,
    AlertThrottleColumns,
    alert_models,
)
from .column_types import Bytes, LongText, TableColumns, Timestamp, column_type
from .column_types import utcnow as utcnow  # importable from here too, as the package's modules and tests do
from .declarations import specs
from .quota_tables import QuotaLockColumns, QuotaUsageColumns, quota_models
from .settings import SETTING_NAMES, SettingsInfo
from .validation import validate_account, validate_settings

if t.TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy

SETTINGS_ID = 1


def _write_only_secret(name: str) -> property:
    """An attribute that encrypts what is assigned into ``<name>_encrypted`` and cannot be read back."""
    column = OAUTH_SECRETS[name]

    def read(self: t.Any) -> t.NoReturn:
        raise AttributeError(f"Account.{name} is write-only; only its ciphertext is stored.")

    def write(self: t.Any, value: str | None) -> None:
        vault = current_app.extensions["smtp_accounts"].vault
        setattr(self, column, vault.encrypt(value) if value else None)

    return property(read, write)


_Mixin = t.TypeVar("_Mixin", bound=type)


def declared_columns(cls: type, mixin: _Mixin | None = None) -> _Mixin | type:
    """``mixin`` (or a new class) holding a column for each declared field of ``cls``.

    Each column is never NULL and has the field's default; a required field
    (an account's email and server) has none: the validation refuses it
    missing before an INSERT would. Declarative copies a mixin's columns
    into each model made from it, one per ``db``.
    """
    holder: type = mixin if mixin is not None else type(f"{cls.__name__}Columns", (), {})
    for field in specs(cls):
        default = {} if field.required else {"default": field.default}
        setattr(holder, field.name, mapped_column(column_type(field), nullable=False, **default))
    return holder


class AccountColumns(TableColumns):
    """An account's declared columns (``account_fields.py``), typed for mypy.

    The columns themselves (type, length, default) are made from the
    declarations below; only these annotations restate the names and types,
    and a test holds them equal to the declarations.
    """

    active: Mapped[bool]
    sender_name: Mapped[str]
    sender_email: Mapped[str]
    host: Mapped[str]
    port: Mapped[int]
    security: Mapped[str]
    auth: Mapped[str]
    login: Mapped[str]
    verify_tls: Mapped[bool]
    backup_ids: Mapped[tuple[int, ...]]
    limit_per_minute: Mapped[int]
    limit_per_hour: Mapped[int]
    limit_per_day: Mapped[int]
    recipient_limit_per_day: Mapped[int]
    over_limit: Mapped[str]
    pipelining: Mapped[bool]
    oauth_provider: Mapped[str]
    oauth_flow: Mapped[str]
    oauth_tenant: Mapped[str]
    oauth_client_id: Mapped[str]
    oauth_token_url: Mapped[str]
    oauth_authorize_url: Mapped[str]
    oauth_scope: Mapped[str]
    max_connections: Mapped[int]


class SettingsColumns(TableColumns):
    """The settings row's declared columns (``settings.py``), typed for mypy; held equal to them by a test."""

    enabled: Mapped[bool]
    save_logs: Mapped[bool]
    log_level: Mapped[int]
    log_rewrite_period: Mapped[str]
    max_log_size_mb: Mapped[int]
    timeout_s: Mapped[int]
    send_test_on_check: Mapped[bool]
    test_recipient: Mapped[str]
    keep_bodies: Mapped[bool]
    message_retention_days: Mapped[int]
    cooldown_s: Mapped[int]
    queue_undelivered: Mapped[bool]
    max_attempts: Mapped[int]
    retry_backoff_s: Mapped[int]
    outbox_all: Mapped[bool]
    outbox_bulk: Mapped[bool]


declared_columns(AccountInfo, AccountColumns)
declared_columns(SettingsInfo, SettingsColumns)


class AccountRow(AccountColumns):
    """An SMTP account that carries the letters sent from its email: its declared columns and what a row adds."""

    # The declared columns come between the id and these (sort_order): a table reads in its fields' order.
    id: Mapped[int] = mapped_column(primary_key=True, sort_order=-1)
    email_key: Mapped[str] = mapped_column(sa.String(254), index=True, sort_order=1)
    password_encrypted: Mapped[str | None] = mapped_column(sa.Text, default=None, sort_order=1)
    oauth_client_secret_encrypted: Mapped[str | None] = mapped_column(sa.Text, default=None, sort_order=1)
    oauth_refresh_token_encrypted: Mapped[str | None] = mapped_column(sa.Text, default=None, sort_order=1)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, sort_order=1)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, sort_order=1)

    @property
    def password(self) -> t.NoReturn:
        raise AttributeError("Account.password is write-only; only its ciphertext is stored.")

    @password.setter
    def password(self, value: str | None) -> None:
        vault = current_app.extensions["smtp_accounts"].vault
        self.password_encrypted = vault.encrypt(value) if value else None

    @property
    def has_password(self) -> bool:
        return bool(self.password_encrypted)

    oauth_client_secret = _write_only_secret("oauth_client_secret")
    oauth_refresh_token = _write_only_secret("oauth_refresh_token")

    def to_info(self) -> AccountInfo:
        """A detached read-only copy of this account."""
        return AccountInfo(**{name: getattr(self, name) for name in ACCOUNT_INFO_FIELDS})

    def __repr__(self) -> str:
        return f"<Account {self.id} {self.sender_email} via {self.host}:{self.port}>"


class SettingsRow(SettingsColumns):
    """The one row of module settings (``id`` 1): its declared columns and what the row adds."""

    id: Mapped[int] = mapped_column(primary_key=True, default=SETTINGS_ID, sort_order=-1)
    revision: Mapped[int] = mapped_column(default=0, sort_order=1)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, sort_order=1)


class MessageColumns(TableColumns):
    """The message log: one row per letter the site sent while routing was on.

    Written by ``message_log.py`` through the engine, never through the
    site's session. ``body`` is kept while the letter is undelivered.
    """

    @declared_attr.directive
    def __table_args__(cls) -> tuple[sa.Index, ...]:
        # A function, so that each model made from the mixin gets indexes of its own table.
        return (
            sa.Index("ix_smtp_accounts_message_queue", "status", "next_attempt_at"),
            # The dashboard's aggregates (mail_stats.py) read these indexes alone, never the rows:
            # counted ranges per status, route and time (the counts), per status and time (the chart).
            sa.Index("ix_smtp_accounts_message_route_stats", "status", "account_id", "created_at"),
            sa.Index("ix_smtp_accounts_message_time_stats", "status", "created_at"),
        )

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    #: sent, suppressed, failed, queued, claimed (a drainer holds it), sending, cancelled (``letter.py``).
    status: Mapped[str] = mapped_column(sa.String(16), index=True)
    #: The account that carried the letter (or was tried last); NULL: Flask-Mail's own settings.
    account_id: Mapped[int | None] = mapped_column(index=True)
    chosen_account_id: Mapped[int | None] = mapped_column()
    account_label: Mapped[str] = mapped_column(sa.String(600), default="")
    rule: Mapped[str] = mapped_column(sa.String(32), default="")
    bulk: Mapped[bool] = mapped_column(default=False)
    sender: Mapped[str] = mapped_column(sa.String(998), default="")
    envelope_from: Mapped[str | None] = mapped_column(sa.String(998))
    sent_from: Mapped[str | None] = mapped_column(sa.String(998))
    reply_to_added: Mapped[str | None] = mapped_column(sa.String(998))
    recipients: Mapped[str] = mapped_column(LongText, default="[]")
    pending: Mapped[str] = mapped_column(LongText, default="[]")
    refused: Mapped[str] = mapped_column(LongText, default="{}")
    subject: Mapped[str] = mapped_column(sa.String(998), default="")
    message_id: Mapped[str] = mapped_column(sa.String(998), default="", index=True)
    size: Mapped[int] = mapped_column(default=0)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(Timestamp)
    claimed_until: Mapped[datetime | None] = mapped_column(Timestamp)
    error_stage: Mapped[str | None] = mapped_column(sa.String(32))
    error_code: Mapped[int | None] = mapped_column()
    error_reply: Mapped[str | None] = mapped_column(LongText)
    error: Mapped[str | None] = mapped_column(LongText)
    history: Mapped[str] = mapped_column(LongText, default="[]")
    options: Mapped[str] = mapped_column(LongText, default="[[], []]")
    body: Mapped[bytes | None] = mapped_column(Bytes)
    #: The row this letter is a copy of, when a person sent a logged letter again as a new one.
    resend_of: Mapped[int | None] = mapped_column(default=None)


class HealthColumns(TableColumns):
    """The last connection-level failure of an account and its cool-down, for every process to see."""

    account_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    failures: Mapped[int] = mapped_column(default=0)
    last_failed_at: Mapped[datetime | None] = mapped_column(Timestamp)
    cooldown_until: Mapped[datetime | None] = mapped_column(Timestamp)
    last_stage: Mapped[str | None] = mapped_column(sa.String(32))
    last_code: Mapped[int | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    #: A person paused the account's queue: drainers take none of the letters waiting for it.
    queue_paused: Mapped[bool] = mapped_column(default=False)


class ConnectionSlotColumns(TableColumns):
    """One of the ``max_connections`` slots of an account: a connection may be open while its holder has it."""

    account_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    slot: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    #: Who holds it (a process and connection); NULL: free.
    holder: Mapped[str | None] = mapped_column(sa.String(64), default=None)
    #: The holder renews it before this; past it, the slot is free again (its holder died).
    lease_until: Mapped[datetime | None] = mapped_column(Timestamp, default=None)


@dataclass(frozen=True)
class Models:
    """The model classes made on one ``db``, each typed as the mixin it is made from."""

    Account: type[AccountRow]
    Settings: type[SettingsRow]
    Message: type[MessageColumns]
    Health: type[HealthColumns]
    AlertChannel: type[AlertChannelColumns]
    AlertEvent: type[AlertEventColumns]
    Alert: type[AlertColumns]
    AlertThrottle: type[AlertThrottleColumns]
    QuotaUsage: type[QuotaUsageColumns]
    QuotaLock: type[QuotaLockColumns]
    ConnectionSlot: type[ConnectionSlotColumns]


#: The attribute of a ``db`` that holds its models. They live on the ``db`` itself so that they go
#: when it goes: in a module-level dict keyed by ``db``, even a weak one, the models' own reference to
#: their ``db`` (Flask-SQLAlchemy's ``Model.__fsa__``) would keep both alive for the whole process.
_MODELS_ATTRIBUTE = "_smtp_accounts_models"


def make_models(db: SQLAlchemy, bind_key: str | None = None) -> Models:
    """Declare the tables on ``db`` (once per ``db``)."""
    existing: Models | None = getattr(db, _MODELS_ATTRIBUTE, None)
    if existing is not None:
        return existing

    # db.Model is an attribute of a value, which mypy cannot take as a base class: hence the ignores.
    # Each class adds to its mixin only where its table lives; declarative copies the mixin's columns.
    class Account(AccountRow, db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "smtp_accounts_account"
        __bind_key__ = bind_key

    class Settings(SettingsRow, db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "smtp_accounts_settings"
        __bind_key__ = bind_key

    class Message(MessageColumns, db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "smtp_accounts_message"
        __bind_key__ = bind_key

    class Health(HealthColumns, db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "smtp_accounts_health"
        __bind_key__ = bind_key

    class ConnectionSlot(ConnectionSlotColumns, db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "smtp_accounts_connection_slot"
        __bind_key__ = bind_key

    _listen(Account, Settings, Health)
    models = Models(
        Account=Account,
        Settings=Settings,
        Message=Message,
        Health=Health,
        ConnectionSlot=ConnectionSlot,
        **alert_models(db, bind_key),
        **quota_models(db, bind_key),
    )
    setattr(db, _MODELS_ATTRIBUTE, models)
    return models


def settings_info(row: t.Any) -> SettingsInfo:
    """The snapshot of a settings row (a mapping or an ORM object)."""
    get = row.__getitem__ if isinstance(row, t.Mapping) else lambda n: getattr(row, n)
    return SettingsInfo(**{name: get(name) for name in SettingsInfo.__dataclass_fields__})


def _listen(Account: type[AccountRow], Settings: type[SettingsRow], Health: type[HealthColumns]) -> None:
    settings_table = Settings.__table__
    health_table = Health.__table__

    def check_account(mapper: Mapper[AccountRow], connection: sa.Connection, target: AccountRow) -> None:
        values = {name: getattr(target, name) for name in ACCOUNT_INFO_FIELDS}
        for name, value in validate_account({**values, **secrets_held(values)}).items():
            setattr(target, name, value)
        target.email_key = email_key(target.sender_email)

    def touch_account(mapper: Mapper[AccountRow], connection: sa.Connection, target: AccountRow) -> None:
        check_account(mapper, connection, target)
        target.updated_at = utcnow()

    def bump_revision(mapper: Mapper[AccountRow], connection: sa.Connection, target: AccountRow) -> None:
        bump = (
            settings_table.update()
            .where(settings_table.c.id == SETTINGS_ID)
            .values(revision=settings_table.c.revision + 1)
        )
        if connection.execute(bump).rowcount == 0:
            connection.execute(
                settings_table.insert().values(id=SETTINGS_ID, revision=1, updated_at=utcnow())
            )

    def lift_cooldown(mapper: Mapper[AccountRow], connection: sa.Connection, target: AccountRow) -> None:
        # A changed account is a new try: its last failure says nothing about its new settings.
        connection.execute(
            health_table.update().where(health_table.c.account_id == target.id).values(cooldown_until=None)
        )

    def check_settings(target: SettingsRow) -> None:
        current = {n: getattr(target, n) for n in SETTING_NAMES if getattr(target, n) is not None}
        for name, value in validate_settings(current).items():
            setattr(target, name, value)
        target.updated_at = utcnow()

    def insert_settings(mapper: Mapper[SettingsRow], connection: sa.Connection, target: SettingsRow) -> None:
        check_settings(target)
        target.revision = 1

    def update_settings(mapper: Mapper[SettingsRow], connection: sa.Connection, target: SettingsRow) -> None:
        check_settings(target)
        # An SQL expression, so that a bump made meanwhile by an account change is kept.
        target.revision = settings_table.c.revision + 1

    event.listen(Account, "before_insert", check_account)
    event.listen(Account, "before_update", touch_account)
    for kind in ("after_insert", "after_update", "after_delete"):
        event.listen(Account, kind, bump_revision)
    event.listen(Account, "after_update", lift_cooldown)
    event.listen(Settings, "before_insert", insert_settings)
    event.listen(Settings, "before_update", update_settings)
