"""Text from a server made safe for a log line and a terminal.

A server's reply is written to the logs and printed by the command line.
Raw, an ESC or BEL sequence in it retitles or clears the reader's terminal,
and a line separator (VT, FF, NEL, U+2028, U+2029...) read back by
``splitlines()`` forges a line of its own (``S: 235 2.7.0 Authentication
successful``). :func:`printable` writes every control and line-separator
character as a visible escape instead: ``\\x1b``, ``\\r``, ``\\u2028``.
"""

from __future__ import annotations

import re

#: Control characters (C0, DEL, C1 with NEL) and the Unicode line and paragraph separators.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with every control and line-separator character escaped; one line, nothing a terminal acts on."""
    if _UNPRINTABLE.search(text) is None:
        return text
    return _UNPRINTABLE.sub(_escape, text)


def printable_lines(text: str) -> str:
    """Like :func:`printable`, keeping the ``\\n`` line ends of ``text`` (a log read back from its file)."""
    if _UNPRINTABLE.search(text.replace("\n", "")) is None:
        return text
    return "\n".join(printable(line) for line in text.split("\n"))
