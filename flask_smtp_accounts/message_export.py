"""The message log as CSV or JSON, streamed: any number of rows in constant memory.

:func:`export` reads the rows in chunks by id (``MessageLog.scan``) and
yields the file piece by piece, so that a web response or a file on disk
can take a million rows without the process holding them. Bodies are
never exported. A CSV cell that a spreadsheet would run as a formula
(one starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return)
is prefixed with ``'``: subjects and addresses come from a site's users.
"""

from __future__ import annotations

import csv
import io
import json
import typing as t
from datetime import datetime

if t.TYPE_CHECKING:
    from .message_log import MessageLog

#: The exported fields, in this order; the CSV header is these names.
EXPORT_COLUMNS = (
    "id", "created_at", "status", "account_id", "account_label", "rule", "bulk", "sender", "sent_from", "recipients",
    "pending", "subject", "message_id", "size", "attempts", "error_code", "error", "resend_of",
)  # fmt: skip
#: The formats and their media types.
FORMATS = {"csv": "text/csv; charset=utf-8", "json": "application/json"}
#: Rows written per piece yielded: few enough for flat memory, enough to keep the overhead small.
ROWS_PER_PIECE = 200

_LIST_COLUMNS = ("recipients", "pending")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def export(log: MessageLog, fmt: str, **filters: t.Any) -> t.Iterator[str]:
    """The rows matching ``filters`` (as ``messages()`` takes them), newest first, as ``fmt`` text pieces."""
    if fmt not in FORMATS:
        raise ValueError(f"Unknown export format {fmt!r}; use one of: {', '.join(FORMATS)}.")
    rows = (_plain(row) for row in log.scan(EXPORT_COLUMNS, **filters))
    return _csv(rows) if fmt == "csv" else _json(rows)


def _plain(row: t.Mapping[t.Any, t.Any]) -> dict[str, t.Any]:
    values = {name: row[name] for name in EXPORT_COLUMNS}
    for name in _LIST_COLUMNS:
        values[name] = json.loads(values[name] or "[]")
    if isinstance(values["created_at"], datetime):
        values["created_at"] = values["created_at"].isoformat(sep=" ", timespec="seconds")
    return values


def _cell(value: t.Any) -> t.Any:
    if isinstance(value, list):
        value = ", ".join(value)
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _csv(rows: t.Iterable[dict[str, t.Any]]) -> t.Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    for count, row in enumerate(rows, 1):
        writer.writerow([_cell(row[name]) for name in EXPORT_COLUMNS])
        if count % ROWS_PER_PIECE == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _json(rows: t.Iterable[dict[str, t.Any]]) -> t.Iterator[str]:
    pieces = ["["]
    separator = "\n"
    for row in rows:
        pieces.append(separator + json.dumps(row, ensure_ascii=False))
        separator = ",\n"
        if len(pieces) >= ROWS_PER_PIECE:
            yield "".join(pieces)
            pieces = []
    pieces.append("\n]\n")
    yield "".join(pieces)
