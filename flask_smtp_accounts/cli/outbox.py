"""The letters waiting: ``retry``, ``deliver``, ``outbox``, ``messages`` and ``resend``."""

from __future__ import annotations

import contextlib
import signal
import sys
import time
import typing as t

import click

from ..message_log import INTERRUPTED, STATUSES
from ..printable import printable

if t.TYPE_CHECKING:
    from ..outbox import DeliveryReport


from .base import command, extension, group, one_line, table, yes_no


@command("retry")
@click.option("--limit", type=int, default=None, help="Send at most this many queued letters.")
def retry_queue(limit: int | None) -> None:
    """Send the queued letters that are due (run it from cron); also prunes old message log rows."""
    click.echo(f"Retry run: {extension().retry_queue(limit=limit)}.")


#: Seconds ``deliver --forever`` waits before looking again when nothing was due.
IDLE_S = 2.0


def _progress(report: DeliveryReport) -> str:
    rate = report.per_second
    if not report.left:
        left = "done"
    elif rate > 0:
        left = f"about {report.left / rate:.0f} s left"
    else:
        left = "time left unknown"
    return (
        f"sent {report.sent} / failed {report.failed} / left {report.left}"
        f" ({report.requeued} back in the queue), {rate:.1f} letters/s, {left}"
    )


@contextlib.contextmanager
def _stop_on_sigterm() -> t.Iterator[None]:
    """SIGTERM (``kill``, a service manager's stop) stops a drain as Ctrl+C does, not mid-letter.

    Python's own SIGTERM ends the process at once, leaving its claims to
    wait out their lease; as a ``KeyboardInterrupt`` the letters being sent
    are finished and the rest go back to the queue. Only the main thread
    may set a handler; elsewhere SIGTERM keeps its meaning.
    """

    def interrupt(signum: int, frame: t.Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@command("deliver")
@click.option(
    "--connections", type=int, default=8, show_default=True, help="Connections at once, 1 to 100 (threads)."
)
@click.option(
    "--limit", type=int, default=None, help="Send at most this many letters (per round with --forever)."
)
@click.option(
    "--forever",
    is_flag=True,
    help="Keep delivering letters as they arrive, until stopped (Ctrl+C or SIGTERM).",
)
def deliver(connections: int, limit: int | None, forever: bool) -> None:
    """Send the letters waiting in the outbox (and the due retries) over parallel connections."""
    ext = extension()
    live = sys.stdout.isatty()

    def show(report: DeliveryReport) -> None:
        if live:
            click.echo("\r\033[K" + _progress(report), nl=False)

    try:
        with _stop_on_sigterm():
            while True:
                report = ext.deliver_queued(connections, limit, progress=show)
                click.echo(("\r\033[K" if live else "") + _progress(report))
                if not forever:
                    return
                if not report.sent + report.failed + report.requeued:
                    time.sleep(IDLE_S)
    except KeyboardInterrupt:
        click.echo("\nStopped: the letters being sent were finished, the rest went back to the queue.")


@group("outbox")
def outbox_cli() -> None:
    """The outbox: what waits per account, pause, resume, cancel."""


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


@outbox_cli.command("status")
def outbox_status() -> None:
    """Per account: waiting, being sent, sent and failed in 24 h, letters a minute, time left, paused."""
    lines = extension().outbox_status()
    if not lines:
        click.echo("No accounts and no letters in the outbox.")
        return
    table(
        ("ID", "Account", "Queued", "Sending", "Sent 24h", "Failed 24h", "Per minute", "Time left", "Paused"),
        [
            (
                line.account_id,
                printable(line.label),
                line.queued,
                line.in_flight,
                line.sent_24h,
                line.failed_24h,
                f"{line.per_minute:.1f}",
                _duration(line.seconds_left),
                yes_no(line.paused),
            )
            for line in lines
        ],
    )


@outbox_cli.command("pause")
@click.argument("account_id", type=int)
def pause_queue(account_id: int) -> None:
    """Stop every drainer from taking this account's letters (0: Flask-Mail's own route)."""
    extension().pause_queue(account_id)
    click.echo(f"Queue of account {account_id} paused.")


@outbox_cli.command("resume")
@click.argument("account_id", type=int)
def resume_queue(account_id: int) -> None:
    """Let drainers take this account's letters again."""
    extension().resume_queue(account_id)
    click.echo(f"Queue of account {account_id} resumed.")


@outbox_cli.command("cancel")
@click.option(
    "--account", "account_id", type=int, default=None, help="Only this account's letters (0: Flask-Mail's)."
)
@click.option("--all", "everything", is_flag=True, help="Every waiting letter.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def cancel_queued(account_id: int | None, everything: bool, yes: bool) -> None:
    """Cancel waiting letters: they are never sent. Letters being sent are left alone."""
    if (account_id is not None) == everything:
        raise click.UsageError("Say which letters: --account ID or --all.")
    which = "every waiting letter" if everything else f"the waiting letters of account {account_id}"
    if not yes:
        click.confirm(f"Cancel {which}? They will never be sent.", abort=True)
    count = extension().cancel_queued(account_id=account_id)
    click.echo(f"Cancelled {count} letter{'s' if count != 1 else ''}.")


#: How the command line names a state; ``interrupted`` is a ``sending`` row past its lease.
_STATE_WORDS = {INTERRUPTED: "interrupted: outcome unknown"}


@command("messages")
@click.option(
    "--status", type=click.Choice([*STATUSES, INTERRUPTED]), default=None, help="Only letters in this state."
)
@click.option("--page", type=click.IntRange(min=1), default=1, show_default=True)
def list_messages(status: str | None, page: int) -> None:
    """List the message log, newest first (50 a page)."""
    found = extension().messages(status=status, page=page)
    if not found.items:
        click.echo("No letters.")
        return
    table(
        ("ID", "Created (UTC)", "State", "From", "Route", "Subject"),
        [
            (
                m.id,
                m.created_at.isoformat(sep=" ", timespec="seconds"),
                _STATE_WORDS.get(m.state, m.state),
                one_line(m.sender),
                one_line(m.route),
                one_line(m.subject),
            )
            for m in found.items
        ],
    )
    click.echo(f"Page {found.page} of {found.pages} ({found.total} letters).")


@command("resend")
@click.argument("message_id", type=int)
def resend_message(message_id: int) -> None:
    """Send a failed, queued or interrupted letter again now (check an interrupted one first: it may have arrived)."""
    record = extension().resend_message(message_id)
    click.echo(f"Message {record.id}: {record.state}.")


#: The commands this module adds to ``flask smtp-accounts``.
COMMANDS = (retry_queue, deliver, outbox_cli, list_messages, resend_message)
