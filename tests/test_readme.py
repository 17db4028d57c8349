"""The README stays true to the code: config keys, settings, commands, the API, the two commands."""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
from pathlib import Path

import click
import pytest

from flask_smtp_accounts import SMTPAccounts
from flask_smtp_accounts.cli import smtp_accounts_cli
from flask_smtp_accounts.config import DEFAULTS
from flask_smtp_accounts.settings import SettingsInfo

# The README against the code's constants and commands: no site, no database.
pytestmark = pytest.mark.one_database

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, re.M | re.S)
    assert match, f"no section {title!r}"
    return match.group(1)


def table_rows(text: str) -> list[tuple[str, str]]:
    """``(name, default)`` of the rows whose first two cells are code."""
    return re.findall(r"^\| `([^`]+)` \| `([^`]*)` \|", text, re.M)


def test_configuration_table_mirrors_config_defaults() -> None:
    assert table_rows(section("Configuration")) == [(key, repr(value)) for key, value in DEFAULTS.items()]


def test_settings_table_mirrors_settings_defaults() -> None:
    expected = [(f.name, repr(f.default)) for f in dataclasses.fields(SettingsInfo) if f.name != "revision"]
    assert table_rows(section("Settings")) == expected


def _commands(group: click.Group, prefix: str) -> list[str]:
    found = []
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        found += _commands(command, path) if isinstance(command, click.Group) else [path]
    return found


def test_every_command_is_documented() -> None:
    documented = section("Command line")
    missing = [c for c in _commands(smtp_accounts_cli, "flask smtp-accounts") if f"`{c}" not in documented]
    assert missing == []


def test_every_public_method_is_documented() -> None:
    api = section("Python API") + section("Admin pages") + section("Use it in your site")
    names = [name for name, _ in inspect.getmembers(SMTPAccounts) if not name.startswith("_")]
    missing = [
        name
        for name in names
        if not re.search(rf"smtp_accounts\.{name}\b", api) and name not in {"is_allowed"}
    ]
    assert missing == []


def test_quick_start_is_two_commands_that_exist() -> None:
    commands = re.search(r"## Quick start\n.*?```sh\n(.*?)```", README, re.S)
    assert commands
    lines = [line.split("#")[0].strip() for line in commands.group(1).strip().splitlines()]
    assert lines == ["./scripts/demo", "./scripts/test"]
    for script in ("scripts/demo", "scripts/test", ".ci/run"):
        assert os.access(ROOT / script, os.X_OK), script
    ci = (ROOT / ".ci/run").read_text()
    assert "\n./scripts/test || failed+=(SQLite)\n" in ci
    assert '[PostgreSQL]="postgresql+psycopg://' in ci and '[MariaDB]="mysql+pymysql://' in ci


def test_every_picture_and_local_link_exists() -> None:
    targets = re.findall(r"\]\(((?!https?://|#)[^)\s]+)\)", README)
    assert targets
    missing = [target for target in targets if not (ROOT / target).exists()]
    assert missing == []
