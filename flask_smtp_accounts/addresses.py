"""What an email address and a server's host name must be, and the form an address is looked up by.

Account fields, alert recipients, resend addresses and routing all read
addresses through these, so one address is valid (or not) everywhere.
"""

from __future__ import annotations

import ipaddress
import typing as t

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from .errors import FieldError, InvalidAccountError


def normalize_email(
    field: str,
    value: t.Any,
    error: type[FieldError] = InvalidAccountError,
) -> str:
    """Check an address's syntax; return it as the user wrote it, trimmed."""
    if not isinstance(value, str) or not value.strip():
        raise error(field, "an email address is required")
    if "\r" in value or "\n" in value:
        raise error(field, "must not contain line breaks")
    address = value.strip()
    reserved = reserved_domain(address)
    reserved = reserved if reserved in SPECIAL_USE_DOMAIN_NAMES else None
    # email_validator refuses special-use names (.test, .local...) outright, though a site's own relay
    # carries them: the form is checked with the reserved name swapped for letters of the same length.
    checked = address if reserved is None else address[: len(address) - len(reserved)] + "x" * len(reserved)
    try:
        validate_email(checked, check_deliverability=False, globally_deliverable=reserved is None)
    except EmailNotValidError as err:
        raise error(field, f"{address!r} is not a valid email address: {err}") from None
    return address


def reserved_domain(address: str) -> str | None:
    """The special-use name (``test``, ``local``, ``localhost``, ``invalid``...) an address's domain ends in, if any.

    Mail from such a domain never reaches the internet at large; only a
    server that accepts it on purpose (a site's own relay) carries it.
    """
    domain = address.rpartition("@")[2].strip().rstrip(".").lower()
    for name in (*SPECIAL_USE_DOMAIN_NAMES, "example"):
        if domain == name or domain.endswith("." + name):
            return name
    return None


def email_key(address: str) -> str:
    """The form under which an address is looked up: trimmed, case-folded."""
    return address.strip().lower()


def host_name(field: str, host: str) -> str:
    """``host`` if it is an IP address or a name DNS can hold: labels of 1 to 63 octets, 253 in all (IDNA-encoded).

    A typo such as ``smtp..example.com`` is refused here, with the reason,
    rather than failing every send later.
    """
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    try:
        encoded = host.encode("idna")
    except UnicodeError:
        encoded = b""
    labels = encoded.split(b".")
    if labels and labels[-1] == b"" and len(labels) > 1:
        labels.pop()  # the root's dot: "smtp.example.com."
    if not encoded or not all(0 < len(label) <= 63 for label in labels) or len(b".".join(labels)) > 253:
        raise InvalidAccountError(
            field,
            f"{host!r} is not a host name: each part between dots must have 1 to 63 characters, 253 in all",
        )
    return host
