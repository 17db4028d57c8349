"""``flask smtp-accounts settings`` and ``rotate-key``: the module's settings and its keys."""

from __future__ import annotations

import typing as t

import click

from ..settings import SETTING_NAMES
from .base import command, extension, group, table


@command("rotate-key")
def rotate_key() -> None:
    """Re-encrypt every stored password with the newest key.

    Put the new key first in SMTP_ACCOUNTS_ENCRYPTION_KEYS, keep the old ones
    after it, run this, then remove the old keys.
    """
    count = extension().rotate_encryption_key()
    click.echo(f"Re-encrypted {count} password(s) with the newest key; older keys can now be removed.")


@group("settings")
def settings_cli() -> None:
    """Show or change the module's settings."""


@settings_cli.command("show")
def show_settings() -> None:
    """Show the settings."""
    settings = extension().settings
    table(("Setting", "Value"), [(name, _setting_text(getattr(settings, name))) for name in SETTING_NAMES])


def _setting_text(value: t.Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if value != "" else "-"


@settings_cli.command("set")
@click.argument("changes", nargs=-1, required=True, metavar="NAME=VALUE...")
def set_settings(changes: tuple[str, ...]) -> None:
    """Change settings, e.g. ``set enabled=true timeout_s=20``; all or nothing."""
    parsed: dict[str, str] = {}
    for change in changes:
        name, sep, value = change.partition("=")
        if not sep:
            raise click.UsageError(f"{change!r} is not NAME=VALUE; settings: {', '.join(SETTING_NAMES)}")
        parsed[name.strip()] = value.strip()
    settings = extension().update_settings(**parsed)
    for name in parsed:
        click.echo(f"{name} = {_setting_text(getattr(settings, name))}")


#: The commands this module adds to ``flask smtp-accounts``.
COMMANDS = (rotate_key, settings_cli)
