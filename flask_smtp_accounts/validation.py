"""Validation of account fields and settings.

Every writer (the admin pages, the command line, the Python API and plain
ORM flushes) goes through these functions, so bad input is refused the
same way everywhere, with the name of the field, before anything is written.
A field is checked as its declaration says (type, range, choices, length,
and by name a check of its own: :data:`CHECKS`); the rules between fields
(who logs in with what, OAuth2) follow.
"""

from __future__ import annotations

import typing as t
import urllib.parse

from .account_fields import ACCOUNT_SPECS, CHOICES, OAUTH2, AccountInfo

# The limits are importable from here too, as the quotas, the presets and the admin do.
from .account_fields import LIMIT_FIELDS as LIMIT_FIELDS
from .account_fields import LIMITS as LIMITS
from .account_fields import MAX_CONNECTIONS as MAX_CONNECTIONS
from .account_fields import MAX_LIMIT as MAX_LIMIT
from .addresses import host_name, normalize_email
from .declarations import Declared, declared
from .errors import InvalidAccountError, InvalidSettingError
from .ids import parse_id
from .oauth2.providers import is_loopback
from .settings import SETTINGS
from .texts import N_, Text

SECURITY_CHOICES = CHOICES["security"]
AUTH_CHOICES = CHOICES["auth"]
#: What a queued letter does at a limit of its account: wait for its next slot, or go through its backups.
OVER_LIMIT_CHOICES = CHOICES["over_limit"]
PROVIDER_CHOICES = CHOICES["oauth_provider"]
FLOW_CHOICES = CHOICES["oauth_flow"]

#: The class of a field's error: ``InvalidAccountError`` or ``InvalidSettingError``.
Error = type[InvalidAccountError] | type[InvalidSettingError]


def _no_line_breaks(field: str, value: str, error: Error = InvalidAccountError) -> str:
    if "\r" in value or "\n" in value:
        raise error(field, "must not contain line breaks")
    return value


def validate_account(values: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """Check the fields of an account and return them normalised; a missing field is its default.

    ``values`` holds the account's fields (``has_password`` tells whether a
    password is stored or given). Each field is checked as its declaration
    says (``account_fields.py``), then the rules between fields (who logs in
    with what). Raises :class:`InvalidAccountError` naming the first bad field.
    """
    out = {
        field.name: check_field(field, values.get(field.name), InvalidAccountError, values)
        for field in ACCOUNT_SPECS
        if field.group != OAUTH2
    }
    auth, login = out["auth"], out["login"]
    if auth == "login" and not login:
        raise InvalidAccountError("login", "is required when authorization is login and password")
    if auth == "login" and not values.get("has_password"):
        raise InvalidAccountError("password", "is required when authorization is login and password")
    if auth == "oauth2" and not login:
        raise InvalidAccountError("login", "is required with OAuth2: the mailbox's address, as the SMTP user")
    if auth == "oauth2":
        out.update(validate_oauth2({**values, **out}))
    return out


def check_field(
    field: Declared,
    value: t.Any,
    error: Error,
    values: t.Mapping[str, t.Any],
    *,
    none_is_default: bool = True,
) -> t.Any:
    """One field's value, checked and normalised as its declaration says.

    ``None`` stands for the field's default when ``none_is_default`` (an
    account's field left out); a setting is only ever changed to a value.
    ``values`` are the other fields given with it (a backup names its own
    account's id). Raises ``error`` naming the field.
    """
    if value is None and none_is_default and not field.required:
        value = field.default
    if field.check:
        return CHECKS[field.check](field, value, error, values)
    if field.type is bool:
        return _bool(field.name, value, error)
    if field.type is int:
        return _int_in(field.name, value, field.minimum, field.maximum, error)
    if field.choices:
        return _choice(field, value, error)
    return _one_line(field, value, error, values)


def _choice(field: Declared, value: t.Any, error: Error) -> str:
    choices = [choice for choice, _ in field.choices]
    if value not in choices:
        raise error(field.name, f"must be one of {', '.join(choices)}, not {value!r}")
    return t.cast(str, value)


def _one_line(field: Declared, value: t.Any, error: Error, values: t.Mapping[str, t.Any]) -> str:
    """Text of one line, trimmed, at most as long as its column."""
    value = value or ""
    if not isinstance(value, str):
        raise error(field.name, "must be text")
    text = _no_line_breaks(field.name, value, error).strip()
    if field.length is not None and len(text) > field.length:
        raise error(field.name, f"must be at most {field.length} characters")
    return text


def _login(field: Declared, value: t.Any, error: Error, values: t.Mapping[str, t.Any]) -> str:
    """Like other text, but its length error is a sentence the admin translates."""
    if isinstance(value, str) and field.length is not None and len(value.strip()) > field.length:
        raise error(
            field.name, Text("login-too-long", N_("must be at most %(limit)s characters"), limit=field.length)
        )
    return _one_line(field, value, error, values)


def _email(field: Declared, value: t.Any, error: Error, values: t.Mapping[str, t.Any]) -> str:
    return normalize_email(field.name, value, error)


def _email_or_empty(field: Declared, value: t.Any, error: Error, values: t.Mapping[str, t.Any]) -> str:
    if value in (None, ""):
        return ""
    return normalize_email(field.name, value, error)


def _host(field: Declared, value: t.Any, error: Error, values: t.Mapping[str, t.Any]) -> str:
    if not isinstance(value, str) or not value.strip():
        raise error(field.name, "a mail server address is required")
    host = _no_line_breaks(field.name, value, error).strip()
    if any(ch.isspace() for ch in host):
        raise error(field.name, "must not contain spaces or line breaks")
    return host_name(field.name, host)


def _port(field: Declared, value: t.Any, error: Error, values: t.Mapping[str, t.Any]) -> int:
    """A port, given as a number or its digits alone (``"587"``, not ``"5e2"`` nor ``True``)."""
    message = f"must be a number from {field.minimum} to {field.maximum}, not {value!r}"
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise error(field.name, message) from None
    low, high = t.cast(int, field.minimum), t.cast(int, field.maximum)
    if isinstance(value, bool) or not low <= number <= high or str(number) != str(value).strip():
        raise error(field.name, message)
    return number


def _limit(field: Declared, value: t.Any, error: Error, values: t.Mapping[str, t.Any]) -> int:
    """A sending limit; blank is 0 (none)."""
    value = 0 if value in (None, "") else value
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        number = -1
    if isinstance(value, bool) or isinstance(value, float) and value != number:
        number = -1
    if not 0 <= number <= MAX_LIMIT:
        raise error(field.name, f"must be a whole number from 0 (no limit) to {MAX_LIMIT:,}, not {value!r}")
    return number


def _backup_ids(
    field: Declared, value: t.Any, error: Error, values: t.Mapping[str, t.Any]
) -> tuple[int, ...]:
    return backup_ids(value, values.get("id"))


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


def _text(values: t.Mapping[str, t.Any], name: str) -> str:
    """An OAuth2 field's text: one line, no spaces (but between scopes), at most as long as its column."""
    value = values.get(name) or ""
    if not isinstance(value, str):
        raise InvalidAccountError(name, "must be text")
    value = _no_line_breaks(name, value).strip()
    if any(ch.isspace() for ch in value) and name != "oauth_scope":
        raise InvalidAccountError(name, "must not contain spaces")
    limit = declared(AccountInfo, name).length
    if limit is not None and len(value) > limit:
        raise InvalidAccountError(name, f"must be at most {limit} characters")
    return value


def _endpoint(values: t.Mapping[str, t.Any], name: str, required: bool) -> str:
    url = _text(values, name)
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
    scope = " ".join(_text(values, "oauth_scope").split())
    if custom and not scope:
        raise InvalidAccountError("oauth_scope", "is required with a custom OAuth2 provider")
    out["oauth_scope"] = scope
    if flow == "delegated" and not values.get("has_oauth_refresh_token"):
        raise InvalidAccountError(
            "oauth_refresh_token", "is required for delegated access: sign in with the provider to get one"
        )
    return out


def _int_in(
    field: str, value: t.Any, low: int | None, high: int | None, error: Error = InvalidSettingError
) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: float("inf")
        raise error(field, f"must be a whole number from {low} to {high}, not {value!r}") from None
    out_of_range = low is not None and number < low or high is not None and number > high
    if isinstance(value, bool) or isinstance(value, float) and value != number or out_of_range:
        raise error(field, f"must be a whole number from {low} to {high}, not {value!r}")
    return number


def _bool(field: str, value: t.Any, error: Error = InvalidSettingError) -> bool:
    """True or false, strictly: the string ``"False"`` is false, and ``"maybe"`` is refused."""
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
    raise error(field, f"must be true or false, not {value!r}")


#: The checks of their own that a declaration names (``check=``), beyond its type, range and choices.
CHECKS: dict[str, t.Callable[[Declared, t.Any, Error, t.Mapping[str, t.Any]], t.Any]] = {
    "one_line": _one_line,
    "login": _login,
    "email": _email,
    "email_or_empty": _email_or_empty,
    "host": _host,
    "port": _port,
    "limit": _limit,
    "backup_ids": _backup_ids,
}
_SETTINGS = {setting.name: setting for setting in SETTINGS}


def validate_settings(changes: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """Check setting changes; return them normalised or raise naming the field."""
    out = {}
    for name, value in changes.items():
        setting = _SETTINGS.get(name)
        if setting is None:
            raise InvalidSettingError(name, f"is not a setting; known settings: {', '.join(_SETTINGS)}")
        out[name] = check_field(setting, value, InvalidSettingError, changes, none_is_default=False)
    return out
