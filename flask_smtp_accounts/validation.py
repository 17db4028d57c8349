"""Validation of account fields and settings.

Every writer (the admin pages, the command line, the Python API and plain
ORM flushes) goes through these functions, so bad input is refused the
same way everywhere, with the name of the field, before anything is written.
"""

from __future__ import annotations

import ipaddress
import typing as t
import urllib.parse

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from .errors import InvalidAccountError, InvalidSettingError
from .ids import parse_id
from .oauth2 import FLOW_CHOICES, PROVIDER_CHOICES, is_loopback
from .texts import N_, Text

SECURITY_CHOICES = ("none", "ssl", "starttls")
AUTH_CHOICES = ("none", "login", "oauth2")
REWRITE_PERIODS = ("day", "week", "month", "year")


def normalize_email(
    field: str,
    value: t.Any,
    error: type[InvalidAccountError] | type[InvalidSettingError] = InvalidAccountError,
) -> str:
    """Check an address's syntax; return it as the user wrote it, trimmed."""
    if not isinstance(value, str) or not value.strip():
        raise error(field, "an email address is required")
    if "\r" in value or "\n" in value:
        raise error(field, "must not contain line breaks")
    value = value.strip()
    reserved = reserved_domain(value)
    reserved = reserved if reserved in SPECIAL_USE_DOMAIN_NAMES else None
    # email_validator refuses special-use names (.test, .local...) outright, though a site's own relay
    # carries them: the form is checked with the reserved name swapped for letters of the same length.
    checked = value if reserved is None else value[: len(value) - len(reserved)] + "x" * len(reserved)
    try:
        validate_email(checked, check_deliverability=False, globally_deliverable=reserved is None)
    except EmailNotValidError as err:
        raise error(field, f"{value!r} is not a valid email address: {err}") from None
    return value


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


def _no_line_breaks(field: str, value: str) -> str:
    if "\r" in value or "\n" in value:
        raise InvalidAccountError(field, "must not contain line breaks")
    return value


def validate_account(values: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """Check the fields of an account and return them normalised.

    ``values`` holds the account's fields (``has_password`` tells whether a
    password is stored or given). Raises :class:`InvalidAccountError`
    naming the first bad field.
    """
    out: dict[str, t.Any] = {}
    out["sender_email"] = normalize_email("sender_email", values.get("sender_email"))

    name = values.get("sender_name") or ""
    if not isinstance(name, str):
        raise InvalidAccountError("sender_name", "must be text")
    name = _no_line_breaks("sender_name", name).strip()
    if len(name) > 255:
        raise InvalidAccountError("sender_name", "must be at most 255 characters")
    out["sender_name"] = name

    host = values.get("host")
    if not isinstance(host, str) or not host.strip():
        raise InvalidAccountError("host", "a mail server address is required")
    host = _no_line_breaks("host", host).strip()
    if any(ch.isspace() for ch in host):
        raise InvalidAccountError("host", "must not contain spaces or line breaks")
    out["host"] = host_name("host", host)

    port = values.get("port")
    try:
        port_number = int(port)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidAccountError("port", f"must be a number from 1 to 65535, not {port!r}") from None
    if isinstance(port, bool) or not 1 <= port_number <= 65535 or str(port_number) != str(port).strip():
        raise InvalidAccountError("port", f"must be a number from 1 to 65535, not {port!r}")
    out["port"] = port_number

    security = values.get("security")
    if security not in SECURITY_CHOICES:
        raise InvalidAccountError(
            "security", f"must be one of {', '.join(SECURITY_CHOICES)}, not {security!r}"
        )
    out["security"] = security

    auth = values.get("auth")
    if auth not in AUTH_CHOICES:
        raise InvalidAccountError("auth", f"must be one of {', '.join(AUTH_CHOICES)}, not {auth!r}")
    out["auth"] = auth

    login = values.get("login") or ""
    if not isinstance(login, str):
        raise InvalidAccountError("login", "must be text")
    login = _no_line_breaks("login", login).strip()
    if len(login) > 255:
        raise InvalidAccountError(
            "login", Text("login-too-long", N_("must be at most %(limit)s characters"), limit=255)
        )
    if auth == "login" and not login:
        raise InvalidAccountError("login", "is required when authorization is login and password")
    if auth == "login" and not values.get("has_password"):
        raise InvalidAccountError("password", "is required when authorization is login and password")
    if auth == "oauth2" and not login:
        raise InvalidAccountError("login", "is required with OAuth2: the mailbox's address, as the SMTP user")
    out["login"] = login
    if auth == "oauth2":
        out.update(validate_oauth2(values))
    if "backup_ids" in values:
        out["backup_ids"] = backup_ids(values.get("backup_ids"), values.get("id"))
    if values.get("max_connections") is not None:
        out["max_connections"] = _int_in(
            "max_connections", values["max_connections"], 0, MAX_CONNECTIONS, InvalidAccountError
        )
    return out


#: The highest ``max_connections`` of an account (0: no cap).
MAX_CONNECTIONS = 100


#: What decides where the stored password goes (and an OAuth2 account's access tokens).
SMTP_DESTINATION = ("host", "port", "security", "verify_tls", "auth", "login")
#: What decides where the stored OAuth2 client secret and refresh token go.
TOKEN_DESTINATION = ("auth", "oauth_provider", "oauth_tenant", "oauth_token_url", "oauth_authorize_url")


def secrets_given_again(before: t.Mapping[str, t.Any], after: t.Any, given: t.Collection[str]) -> None:
    """Refuse a change that would send a stored secret somewhere new, unless that secret comes with it.

    Someone who may edit accounts but never read a password could
    otherwise point an account at a server of their own, leave the password
    blank ("keep the stored one") and receive it at the next check or send.
    ``before``: the account's stored fields; ``after``: the validated
    ``AccountInfo``; ``given``: the secrets given with the change
    (``password``, ``oauth_client_secret``, ``oauth_refresh_token``).
    Raises :class:`InvalidAccountError` on the secret's field, naming what moved.
    """
    smtp = [name for name in SMTP_DESTINATION if before.get(name) != getattr(after, name)]
    token = [name for name in TOKEN_DESTINATION if before.get(name) != getattr(after, name)]
    needed: list[tuple[str, list[str]]] = []
    if after.auth == "login":
        needed.append(("password", smtp))
    elif after.auth == "oauth2":
        delegated = after.oauth_flow == "delegated"
        needed.append(("oauth_client_secret", token if delegated else smtp + token))
        if delegated:
            needed.append(("oauth_refresh_token", smtp + token))
    for secret, moved in needed:
        if moved and secret not in given:
            raise secret_needed_again(secret, moved)


def secret_needed_again(secret: str, moved: t.Iterable[str]) -> InvalidAccountError:
    """The error on a secret's field when the ``moved`` fields would send the stored one somewhere new."""
    return InvalidAccountError(
        secret,
        Text(
            "secret-needed-again",
            N_(
                "enter it again: %(fields)s changed, and a stored secret is only ever sent where it was entered for"
            ),
            fields=", ".join(dict.fromkeys(moved)),
        ),
    )


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


def backup_ids(value: t.Any, own_id: int | None = None) -> tuple[int, ...]:
    """The ordered backup account ids: from ``"3, 5"``, ``[3, 5]`` or ``None``.

    Their existence is checked by the writer, which has the database.
    """
    if value in (None, ""):
        return ()
    items = value.replace(";", ",").split(",") if isinstance(value, str) else list(value)
    out: list[int] = []
    for item in items:
        if isinstance(item, str) and not item.strip():
            continue
        number = parse_id(item)
        if not number:
            raise InvalidAccountError("backup_ids", f"must be account ids, not {item!r}")
        if own_id and number == own_id:
            raise InvalidAccountError("backup_ids", "an account cannot be its own backup")
        if number in out:
            raise InvalidAccountError("backup_ids", f"account {number} is named twice")
        out.append(number)
    if len(out) > 10:
        raise InvalidAccountError("backup_ids", "at most 10 backup accounts")
    return tuple(out)


def _text(values: t.Mapping[str, t.Any], name: str, limit: int = 255) -> str:
    value = values.get(name) or ""
    if not isinstance(value, str):
        raise InvalidAccountError(name, "must be text")
    value = _no_line_breaks(name, value).strip()
    if any(ch.isspace() for ch in value) and name != "oauth_scope":
        raise InvalidAccountError(name, "must not contain spaces")
    if len(value) > limit:
        raise InvalidAccountError(name, f"must be at most {limit} characters")
    return value


def _endpoint(values: t.Mapping[str, t.Any], name: str, required: bool) -> str:
    url = _text(values, name, 500)
    if not url:
        if required:
            raise InvalidAccountError(name, "is required with a custom OAuth2 provider")
        return url
    parts = urllib.parse.urlsplit(url)
    if (
        not (parts.scheme == "https" or parts.scheme == "http" and is_loopback(parts.hostname))
        or not parts.hostname
    ):
        raise InvalidAccountError(
            name, f"must be an https:// address (http:// only on this machine), not {url!r}"
        )
    return url


def validate_oauth2(values: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """Check the OAuth2 fields of an account whose authorization is ``oauth2``.

    ``has_oauth_client_secret`` and ``has_oauth_refresh_token`` tell
    whether those secrets are stored or given.
    """
    out: dict[str, t.Any] = {}
    if values.get("security") == "none":
        raise InvalidAccountError("security", "OAuth2 sends an access token: choose SSL or STARTTLS")
    provider = values.get("oauth_provider") or ""
    if provider not in PROVIDER_CHOICES:
        raise InvalidAccountError(
            "oauth_provider", f"must be one of {', '.join(PROVIDER_CHOICES)}, not {provider!r}"
        )
    flow = values.get("oauth_flow") or "delegated"
    if flow not in FLOW_CHOICES:
        raise InvalidAccountError("oauth_flow", f"must be one of {', '.join(FLOW_CHOICES)}, not {flow!r}")
    if provider == "google" and flow == "app":
        raise InvalidAccountError(
            "oauth_flow", "Google has no app-only flow for SMTP: use delegated (sign in with Google)"
        )
    out.update(oauth_provider=provider, oauth_flow=flow)
    tenant = _text(values, "oauth_tenant")
    if provider == "microsoft" and flow == "app":
        if not tenant:
            raise InvalidAccountError(
                "oauth_tenant", "is required for Microsoft app-only access: the directory (tenant) id"
            )
        if tenant.lower() in {"common", "organizations", "consumers"}:
            raise InvalidAccountError(
                "oauth_tenant", f"app-only access needs the tenant's own id or domain, not {tenant!r}"
            )
    if tenant and not all(ch.isalnum() or ch in ".-_" for ch in tenant):
        raise InvalidAccountError(
            "oauth_tenant", f"must be a directory (tenant) id or domain, not {tenant!r}"
        )
    out["oauth_tenant"] = tenant
    client_id = _text(values, "oauth_client_id")
    if not client_id:
        raise InvalidAccountError(
            "oauth_client_id", "is required with OAuth2: the app's client (application) id"
        )
    out["oauth_client_id"] = client_id
    if not values.get("has_oauth_client_secret"):
        raise InvalidAccountError(
            "oauth_client_secret", "is required with OAuth2: the app's client secret (its value)"
        )
    custom = provider == "custom"
    out["oauth_token_url"] = _endpoint(values, "oauth_token_url", required=custom)
    out["oauth_authorize_url"] = _endpoint(values, "oauth_authorize_url", required=False)
    scope = " ".join(_text(values, "oauth_scope", 500).split())
    if custom and not scope:
        raise InvalidAccountError("oauth_scope", "is required with a custom OAuth2 provider")
    out["oauth_scope"] = scope
    if flow == "delegated" and not values.get("has_oauth_refresh_token"):
        raise InvalidAccountError(
            "oauth_refresh_token", "is required for delegated access: sign in with the provider to get one"
        )
    return out


def _int_in(
    field: str,
    value: t.Any,
    low: int,
    high: int,
    error: type[InvalidSettingError] | type[InvalidAccountError] = InvalidSettingError,
) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: float("inf")
        raise error(field, f"must be a whole number from {low} to {high}, not {value!r}") from None
    if isinstance(value, bool) or isinstance(value, float) and value != number or not low <= number <= high:
        raise error(field, f"must be a whole number from {low} to {high}, not {value!r}")
    return number


def _bool(field: str, value: t.Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {
        "true",
        "false",
        "1",
        "0",
        "on",
        "off",
        "yes",
        "no",
    }:
        return value.strip().lower() in {"true", "1", "on", "yes"}
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise InvalidSettingError(field, f"must be true or false, not {value!r}")


def _period(field: str, value: t.Any) -> str:
    if value not in REWRITE_PERIODS:
        raise InvalidSettingError(field, f"must be one of {', '.join(REWRITE_PERIODS)}, not {value!r}")
    return t.cast(str, value)


def _recipient(field: str, value: t.Any) -> str:
    if value in (None, ""):
        return ""
    return normalize_email(field, value, InvalidSettingError)


#: How each setting is checked; the names are the Settings columns.
SETTING_RULES: dict[str, t.Callable[[str, t.Any], t.Any]] = {
    "enabled": _bool,
    "save_logs": _bool,
    "log_level": lambda f, v: _int_in(f, v, 1, 4),
    "log_rewrite_period": _period,
    "max_log_size_mb": lambda f, v: _int_in(f, v, 0, 1024),
    "timeout_s": lambda f, v: _int_in(f, v, 1, 300),
    "send_test_on_check": _bool,
    "test_recipient": _recipient,
    "keep_bodies": _bool,
    "message_retention_days": lambda f, v: _int_in(f, v, 0, 3650),
    "cooldown_s": lambda f, v: _int_in(f, v, 0, 86400),
    "queue_undelivered": _bool,
    "max_attempts": lambda f, v: _int_in(f, v, 1, 100),
    "retry_backoff_s": lambda f, v: _int_in(f, v, 1, 86400),
    "outbox_all": _bool,
    "outbox_bulk": _bool,
}


def validate_settings(changes: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """Check setting changes; return them normalised or raise naming the field."""
    out = {}
    for field, value in changes.items():
        rule = SETTING_RULES.get(field)
        if rule is None:
            raise InvalidSettingError(field, f"is not a setting; known settings: {', '.join(SETTING_RULES)}")
        out[field] = rule(field, value)
    return out
