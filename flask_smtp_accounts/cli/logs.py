"""``flask smtp-accounts logs``: show, tail and clear the per-account SMTP logs."""

from __future__ import annotations

import click

from ..log_files import KINDS as LOG_KINDS
from ..printable import printable, printable_lines
from .base import extension, group, table


@group("logs")
def logs_cli() -> None:
    """Show, tail and clear the per-account SMTP logs."""


_KIND = click.Choice(LOG_KINDS)
#: How much of a log one read returns; ``show`` reads on until the end.
_CHUNK = 65536


@logs_cli.command("list")
def list_logs() -> None:
    """List the logs: account, kind, file, size and last write (UTC)."""
    logs = extension().list_logs()
    if not logs:
        click.echo("No logs yet.")
        return
    table(
        ("Account", "Kind", "Mailbox", "File", "Size", "Modified (UTC)"),
        [
            (log.account_id, log.kind, log.label, log.filename, log.size, f"{log.modified:%Y-%m-%d %H:%M:%S}")
            for log in logs
        ],
    )


@logs_cli.command("show")
@click.argument("account_id", type=int)
@click.argument("kind", type=_KIND)
def show_log(account_id: int, kind: str) -> None:
    """Print a whole log (ACCOUNT_ID 0: checks of accounts not saved yet)."""
    ext = extension()
    offset = 0
    while True:
        chunk = ext.read_log(account_id, kind, offset, _CHUNK)
        click.echo(printable_lines(chunk.text), nl=False)
        if chunk.end >= chunk.size or chunk.end == offset:
            break
        offset = chunk.end


@logs_cli.command("tail")
@click.argument("account_id", type=int)
@click.argument("kind", type=_KIND)
@click.option(
    "-n",
    "--lines",
    "count",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="How many of the last lines to print.",
)
def tail_log(account_id: int, kind: str, count: int) -> None:
    """Print the last lines of a log."""
    chunk = extension().read_log(account_id, kind, -_CHUNK, _CHUNK)
    # Lines end at "\n" only: a line separator a server slipped into an old entry starts no line.
    lines = chunk.text.split("\n")
    if lines[-1] == "":
        lines.pop()
    if chunk.offset > 0 and lines:
        lines = lines[1:]  # the first line may be cut
    for line in lines[-count:]:
        click.echo(printable(line))


@logs_cli.command("clear")
@click.argument("account_id", type=int)
@click.argument("kind", type=_KIND, required=False)
def clear_log(account_id: int, kind: str | None) -> None:
    """Delete an account's log of KIND, or both of its logs when KIND is left out."""
    ext = extension()
    deleted = [k for k in ((kind,) if kind else LOG_KINDS) if ext.delete_log(account_id, k)]
    if not deleted:
        raise click.ClickException(f"Account {account_id} has no {kind or 'send or check'} log.")
    click.echo(f"Deleted the {' and '.join(deleted)} log of account {account_id}.")


#: The commands this module adds to ``flask smtp-accounts``.
COMMANDS = (logs_cli,)
