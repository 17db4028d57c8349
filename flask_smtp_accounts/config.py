"""The ``SMTP_ACCOUNTS_*`` configuration keys, their defaults and parsing.

This is the one place that lists them; the README mirrors this table.
"""

from __future__ import annotations

import os
import typing as t
from dataclasses import dataclass, field

from flask import Flask

from .oauth2 import PROVIDERS, Provider, providers_with

#: Every key with its default. ``None`` for the keys means "not set".
DEFAULTS: dict[str, t.Any] = {
    # Fernet keys, newest first (list or comma-separated string). Falls back
    # to the environment variable of the same name.
    "SMTP_ACCOUNTS_ENCRYPTION_KEYS": None,
    # Folder of the per-account SMTP logs; relative to app.instance_path.
    "SMTP_ACCOUNTS_LOG_DIR": "smtp_logs",
    # CA bundle used to verify servers' certificates; None = the system store.
    "SMTP_ACCOUNTS_CA_FILE": None,
    # Flask-SQLAlchemy bind key of the extension's tables; None = default engine.
    "SMTP_ACCOUNTS_BIND_KEY": None,
    # Name sent in EHLO; None = the machine's fully qualified name.
    "SMTP_ACCOUNTS_EHLO_NAME": None,
    # Add the ``flask smtp-accounts`` command group to the app's CLI.
    "SMTP_ACCOUNTS_REGISTER_CLI": True,
    # Endpoints of the OAuth2 providers to use instead of the public ones (national clouds):
    # {"microsoft": {"token_url": ..., "authorize_url": ...}}; "{tenant}" is filled in.
    "SMTP_ACCOUNTS_OAUTH2_PROVIDERS": None,
    # Deliver an alert from a short thread as soon as it is noticed; off: only `flask smtp-accounts alerts check` sends.
    "SMTP_ACCOUNTS_ALERT_THREAD": True,
    # Seconds a drainer holds the queued letters it claimed before another may take them; None = 15 minutes.
    "SMTP_ACCOUNTS_CLAIM_LEASE_S": None,
}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def parse_bool(key: str, value: t.Any) -> bool:
    """Read a boolean strictly, so that the string ``"False"`` is false."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise RuntimeError(f"{key} must be a boolean (true/false), not {value!r}.")


def parse_keys(value: t.Any) -> list[str]:
    """Split the encryption keys setting into a list, newest first."""
    if value is None:
        return []
    if isinstance(value, (bytes, str)):
        value = value.decode() if isinstance(value, bytes) else value
        return [k.strip() for k in value.split(",") if k.strip()]
    return [k.decode() if isinstance(k, bytes) else str(k) for k in value]


@dataclass(frozen=True)
class Config:
    """The extension's configuration for one app, read once in ``init_app``."""

    #: Secrets: kept out of ``repr()``, which error reporters record with the locals.
    encryption_keys: tuple[str, ...] = field(repr=False)
    log_dir: str
    ca_file: str | None
    bind_key: str | None
    ehlo_name: str | None
    register_cli: bool
    oauth2_providers: t.Mapping[str, Provider] = field(default_factory=lambda: dict(PROVIDERS))
    alert_thread: bool = True
    #: ``SMTP_ACCOUNTS_CLAIM_LEASE_S``; ``None``: the message log's own lease.
    claim_lease_s: int | None = None


def read_config(app: Flask) -> Config:
    """Apply the defaults to ``app.config`` and read the keys once."""
    for key, default in DEFAULTS.items():
        app.config.setdefault(key, default)
    c = app.config
    keys = c["SMTP_ACCOUNTS_ENCRYPTION_KEYS"]
    if keys is None:
        keys = os.environ.get("SMTP_ACCOUNTS_ENCRYPTION_KEYS")
    log_dir = os.path.join(app.instance_path, os.fspath(c["SMTP_ACCOUNTS_LOG_DIR"]))
    return Config(
        encryption_keys=tuple(parse_keys(keys)),
        log_dir=log_dir,
        ca_file=c["SMTP_ACCOUNTS_CA_FILE"],
        bind_key=c["SMTP_ACCOUNTS_BIND_KEY"],
        ehlo_name=c["SMTP_ACCOUNTS_EHLO_NAME"],
        register_cli=parse_bool("SMTP_ACCOUNTS_REGISTER_CLI", c["SMTP_ACCOUNTS_REGISTER_CLI"]),
        oauth2_providers=providers_with(c["SMTP_ACCOUNTS_OAUTH2_PROVIDERS"]),
        alert_thread=parse_bool("SMTP_ACCOUNTS_ALERT_THREAD", c["SMTP_ACCOUNTS_ALERT_THREAD"]),
        claim_lease_s=_seconds("SMTP_ACCOUNTS_CLAIM_LEASE_S", c["SMTP_ACCOUNTS_CLAIM_LEASE_S"]),
    )


def _seconds(key: str, value: t.Any) -> int | None:
    """A positive whole number of seconds, or ``None`` (unset)."""
    if value is None:
        return None
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        seconds = 0
    if seconds < 1 or isinstance(value, bool) or str(seconds) != str(value).strip():
        raise RuntimeError(f"{key} must be a whole number of seconds, at least 1, not {value!r}.")
    return seconds
