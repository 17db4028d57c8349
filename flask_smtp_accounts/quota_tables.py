"""The tables of the sending limits (``quotas.py``), declared on the site's ``db`` by :func:`~flask_smtp_accounts.models.make_models`."""

from __future__ import annotations

import typing as t
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from .column_types import TableColumns, Timestamp

if t.TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy


class QuotaUsageColumns(TableColumns):
    """A letter counted against its account's limits, kept for a day (the longest window)."""

    @declared_attr.directive
    def __table_args__(cls) -> tuple[sa.Index, ...]:
        # A function, so that each model made from the mixin gets an index of its own table.
        return (sa.Index("ix_smtp_accounts_quota_usage_window", "account_id", "used_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column()
    #: When the slot was taken, just before the letter's transaction began.
    reserved_at: Mapped[datetime] = mapped_column(Timestamp)
    #: When the letter reached the server (its transaction ended); while it is being sent, a
    #: moment far enough ahead that every window counts it.
    used_at: Mapped[datetime] = mapped_column(Timestamp)
    #: Its envelope recipients.
    recipients: Mapped[int] = mapped_column(default=1)


class QuotaLockColumns(TableColumns):
    """One row per limited account, locked while a reservation counts and adds its usage."""

    account_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    #: Written by each reservation on SQLite, whose transactions take the write lock at their first write.
    locked_at: Mapped[datetime | None] = mapped_column(Timestamp, default=None)


class QuotaModels(t.TypedDict):
    """The model classes of these tables made on one ``db``, as :class:`~flask_smtp_accounts.models.Models` holds them."""

    QuotaUsage: type[QuotaUsageColumns]
    QuotaLock: type[QuotaLockColumns]


def quota_models(db: SQLAlchemy, bind_key: str | None) -> QuotaModels:
    """The tables of the sending limits (``quotas.py``): one row per letter counted, one lock row per account."""

    # db.Model is an attribute of a value, which mypy cannot take as a base class: hence the ignores.
    class QuotaUsage(QuotaUsageColumns, db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "smtp_accounts_quota_usage"
        __bind_key__ = bind_key

    class QuotaLock(QuotaLockColumns, db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "smtp_accounts_quota_lock"
        __bind_key__ = bind_key

    return {"QuotaUsage": QuotaUsage, "QuotaLock": QuotaLock}
