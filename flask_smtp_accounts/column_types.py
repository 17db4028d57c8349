"""The column types, the clock and the mixins' base that every table of the extension shares, on all three databases."""

from __future__ import annotations

import typing as t
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from .declarations import Declared


def utcnow() -> datetime:
    """The current UTC time, naive, as the tables keep it."""
    return datetime.now(UTC).replace(tzinfo=None)


#: A point in time, to the microsecond on every database: MySQL's DATETIME keeps whole seconds
#: unless told otherwise, which would tie letters of one second and blur their order.
Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
#: A letter's bytes, of any size: MySQL's BLOB holds 64 KB (LONGBLOB: 4 GB).
Bytes = sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")
#: Text that grows with a letter (its recipients, a server's reply): MySQL's TEXT holds 64 KB.
LongText = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


class IdList(sa.types.TypeDecorator[tuple[int, ...]]):
    """An ordered list of ids, stored as ``"3,5"``."""

    impl = sa.String(200)
    cache_ok = True

    @property
    def python_type(self) -> type[t.Any]:
        return tuple

    def process_bind_param(self, value: t.Any, dialect: t.Any) -> str:
        return ",".join(str(int(i)) for i in value) if value else ""

    def process_result_value(self, value: t.Any, dialect: t.Any) -> tuple[int, ...]:
        return tuple(int(i) for i in value.split(",") if i) if value else ()


class TableColumns:
    """The base of each table's mixin, which a model class made per ``db`` joins to ``db.Model``.

    Declarative gives that class its table and a constructor taking the
    columns as keywords; the mixin has neither, so these lines tell mypy of
    them without defining anything at run time.
    """

    if t.TYPE_CHECKING:
        __table__: t.ClassVar[sa.Table]

        def __init__(self, **columns: t.Any) -> None: ...


def column_type(field: Declared) -> sa.types.TypeEngine[t.Any]:
    """The column type of a declared field: from its Python type, and a string's length."""
    if field.type is bool:
        return sa.Boolean()
    if field.type is int:
        return sa.Integer()
    if field.type is str:
        return sa.String(field.length)
    if field.type == tuple[int, ...]:
        return IdList()
    raise TypeError(f"{field.name}: no column type for {field.type!r}")
