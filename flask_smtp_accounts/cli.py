"""``flask smtp-accounts ...``: a thin command line over the Python API."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup


def _ext():  # type: ignore[no-untyped-def]
    return current_app.extensions["smtp_accounts"].ext


smtp_accounts_cli = AppGroup("smtp-accounts", help="Manage the SMTP accounts that carry the site's mail.")


@smtp_accounts_cli.command("list")
def list_accounts() -> None:
    """List the accounts."""
    ext = _ext()
    for account in ext.Account.query.order_by(ext.Account.id):
        state = "active" if account.active else "inactive"
        click.echo(f"{account.id}\t{state}\t{account.sender_name or '-'}\t{account.sender_email}\t{account.host}:{account.port}\t{account.security}")
