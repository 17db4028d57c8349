"""Reading and replacing headers of a rendered letter, leaving its body byte for byte.

A letter in the message log is kept as the bytes the site rendered. When it
is retried through another account, only its ``From`` (and ``Reply-To``)
change; re-parsing and re-generating the whole letter could alter the
body, so these functions edit the header block alone.
"""

from __future__ import annotations

from email.header import decode_header, make_header
from email.utils import formataddr, parseaddr


def _split(data: bytes) -> tuple[list[bytes], bytes, bytes]:
    """Header lines (each with its line end), the blank line, and the body."""
    eol = b"\r\n" if b"\r\n" in data[:4096] else b"\n"
    end = data.find(eol + eol)
    if end < 0:
        head, blank, body = data, b"", b""
    else:
        head, blank, body = data[: end + len(eol)], eol, data[end + 2 * len(eol) :]
    return head.splitlines(keepends=True), blank, body


def _fields(lines: list[bytes]) -> list[list[bytes]]:
    """Group header lines into fields (a line and its folded continuations)."""
    fields: list[list[bytes]] = []
    for line in lines:
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1].append(line)
        else:
            fields.append([line])
    return fields


def _name_of(field: list[bytes]) -> bytes:
    return field[0].split(b":", 1)[0].strip().lower()


def get_header(data: bytes, name: str) -> str | None:
    """The first ``name`` header of ``data``, unfolded and decoded, or ``None``."""
    lines, _, _ = _split(data)
    wanted = name.lower().encode("ascii")
    for field in _fields(lines):
        if _name_of(field) == wanted:
            raw = b"".join(field).split(b":", 1)[1]
            text = raw.decode("utf-8", "replace").replace("\r", "").replace("\n", "").strip()
            return str(make_header(decode_header(text)))
    return None


def set_header(data: bytes, name: str, value: str) -> bytes:
    """``data`` with every ``name`` header replaced by one ``name: value``.

    The new header takes the place of the first old one, or goes last in
    the header block. ``value`` must already be encoded for a header
    (see :func:`encode_address`).
    """
    lines, blank, body = _split(data)
    eol = b"\r\n" if b"\r\n" in data[:4096] else b"\n"
    wanted = name.lower().encode("ascii")
    new = f"{name}: {value}".encode() + eol
    out: list[bytes] = []
    placed = False
    for field in _fields(lines):
        if _name_of(field) == wanted:
            if not placed:
                out.append(new)
                placed = True
            continue
        out.extend(field)
    if not placed:
        out.append(new)
    return b"".join(out) + (blank or eol) + body


def encode_address(address: str | tuple[str, str]) -> str:
    """An address for a header: ``Name <addr>``, the name RFC 2047-encoded when not ASCII."""
    name, addr = address if isinstance(address, tuple) else parseaddr(address)
    return formataddr((name, addr), charset="utf-8")
