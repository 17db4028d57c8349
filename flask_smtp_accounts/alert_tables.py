"""The tables of the alerts (``alerts.py``), declared on the site's ``db`` by :func:`~flask_smtp_accounts.models.make_models`."""

from __future__ import annotations

import typing as t
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from .column_types import TableColumns, Timestamp, utcnow

if t.TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy


class AlertChannelColumns(TableColumns):
    """Where alerts go: an email to listed addresses, or a webhook (its URL stored encrypted)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    #: ``email`` or ``webhook``.
    kind: Mapped[str] = mapped_column(sa.String(16))
    #: Webhook payload: ``json``, ``slack``, ``teams`` or ``discord``.
    format: Mapped[str] = mapped_column(sa.String(16), default="")
    #: The webhook URL, encrypted (it carries the secret that lets anyone post).
    url_encrypted: Mapped[str | None] = mapped_column(sa.Text, default=None)
    #: The URL's host, the only part ever shown.
    url_host: Mapped[str] = mapped_column(sa.String(255), default="")
    #: Email: the account that carries it; NULL: Flask-Mail's own settings.
    account_id: Mapped[int | None] = mapped_column(default=None)
    #: Email: the addresses, comma-separated.
    recipients: Mapped[str] = mapped_column(sa.Text, default="")
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)

    def __repr__(self) -> str:
        where = self.url_host if self.kind == "webhook" else self.recipients
        return f"<AlertChannel {self.id} {self.kind} {where}>"


class AlertEventColumns(TableColumns):
    """Whether an event raises alerts, and how often; a missing row means the defaults."""

    event: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    enabled: Mapped[bool] = mapped_column(default=True)
    #: At most one alert per event and account in this many minutes.
    throttle_minutes: Mapped[int] = mapped_column(default=60)
    #: The queue backlog event: a letter queued longer than this.
    threshold_minutes: Mapped[int] = mapped_column(default=30)


class AlertColumns(TableColumns):
    """One noticed event, kept until it is delivered (or merged into a delivered one)."""

    @declared_attr.directive
    def __table_args__(cls) -> tuple[sa.Index, ...]:
        # A function, so that each model made from the mixin gets an index of its own table.
        return (sa.Index("ix_smtp_accounts_alert_pending", "status", "event", "account_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event: Mapped[str] = mapped_column(sa.String(32))
    #: The account concerned; 0: none (Flask-Mail's settings, the whole queue).
    account_key: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    #: ``pending``, ``sending``, ``sent`` (this one or counted into one) or ``failed``.
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    #: What happened, in one line of English (what the channels carry).
    text: Mapped[str] = mapped_column(sa.Text, default="")
    attempts: Mapped[int] = mapped_column(default=0)
    sent_at: Mapped[datetime | None] = mapped_column(Timestamp, default=None)
    error: Mapped[str | None] = mapped_column(sa.Text, default=None)


class AlertThrottleColumns(TableColumns):
    """When an alert of an event about an account last went out: the one truth of every process."""

    event: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    account_key: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last_sent_at: Mapped[datetime | None] = mapped_column(Timestamp, default=None)


class AlertModels(t.TypedDict):
    """The model classes of these tables made on one ``db``, as :class:`~flask_smtp_accounts.models.Models` holds them."""

    AlertChannel: type[AlertChannelColumns]
    AlertEvent: type[AlertEventColumns]
    Alert: type[AlertColumns]
    AlertThrottle: type[AlertThrottleColumns]


def alert_models(db: SQLAlchemy, bind_key: str | None) -> AlertModels:
    """The tables of the alerts (``alerts.py``): channels, event choices, the outbox and its throttle."""

    # db.Model is an attribute of a value, which mypy cannot take as a base class: hence the ignores.
    class AlertChannel(AlertChannelColumns, db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "smtp_accounts_alert_channel"
        __bind_key__ = bind_key

    class AlertEvent(AlertEventColumns, db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "smtp_accounts_alert_event"
        __bind_key__ = bind_key

    class Alert(AlertColumns, db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "smtp_accounts_alert"
        __bind_key__ = bind_key

    class AlertThrottle(AlertThrottleColumns, db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "smtp_accounts_alert_throttle"
        __bind_key__ = bind_key

    return {
        "AlertChannel": AlertChannel,
        "AlertEvent": AlertEvent,
        "Alert": Alert,
        "AlertThrottle": AlertThrottle,
    }
