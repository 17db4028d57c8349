"""Ids as people, URLs and callers give them: ASCII digits within the database's integer range.

Every id the extension is handed (an account, a letter of the message log,
a backup, a log, a page number) goes through :func:`parse_id` before it
reaches a query or a file name. ``int()`` alone is not enough: it takes
``"²"`` and ``"٣"``, and a 30-digit number overflows SQLite's 64-bit
integers (``OverflowError``) or makes a file name too long for the disk.
"""

from __future__ import annotations

import typing as t

from werkzeug.routing import BaseConverter, ValidationError

#: The largest id a database stores: SQLite's, PostgreSQL's and MariaDB's signed 64-bit integer.
MAX_ID = 2**63 - 1
_MAX_DIGITS = len(str(MAX_ID))


def parse_id(value: t.Any) -> int | None:
    """The id ``value`` holds (an int, or ASCII digits around which spaces are allowed), or ``None``.

    ``None`` for anything else: a bool, a negative number, a number beyond
    :data:`MAX_ID`, a digit that is not ASCII, an empty string.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= MAX_ID else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or len(text) > _MAX_DIGITS or not text.isascii() or not text.isdigit():
        return None
    number = int(text)
    return number if number <= MAX_ID else None


class IdConverter(BaseConverter):
    """``<smtp_accounts_id:name>`` in a URL: an id as :func:`parse_id` reads it; anything else is a 404."""

    regex = r"[0-9]{1,%d}" % _MAX_DIGITS  # noqa: UP031 - a regex, not a message
    weight = 50

    def to_python(self, value: str) -> int:
        number = parse_id(value)
        if number is None:
            raise ValidationError()
        return number

    def to_url(self, value: t.Any) -> str:
        return str(int(value))
