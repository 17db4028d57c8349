"""``flask smtp-accounts alerts`` and ``summary``: telling an operator what happened."""

from __future__ import annotations

import click

from ..alert_channels import KINDS as ALERT_KINDS
from ..alert_formats import FORMAT_CHOICES
from .base import command, extension, group, secret, table, yes_no


@group("alerts")
def alerts_cli() -> None:
    """Alert channels (email, webhook) and the periodic check."""


@alerts_cli.command("list")
def list_alert_channels() -> None:
    """List the channels (a webhook by its host only) and the events."""
    alerts = extension().alerts
    table(
        ("ID", "Kind", "Format", "Sends to", "Through account"),
        [(c.id, c.kind, c.format or "-", c.target, c.account_id or "-") for c in alerts.channels()],
    )
    click.echo("")
    table(
        ("Event", "On", "Throttle (min)", "Threshold (min)"),
        [
            (
                e.event,
                yes_no(e.enabled),
                e.throttle_minutes,
                e.threshold_minutes if e.event == "queue_backlog" else "-",
            )
            for e in alerts.event_settings()
        ],
    )


@alerts_cli.command("add")
@click.argument("kind", type=click.Choice(ALERT_KINDS))
@click.option(
    "--url-env", metavar="NAME", help="Environment variable holding the webhook URL (else a hidden prompt)."
)
@click.option(
    "--format",
    "format_",
    type=click.Choice(FORMAT_CHOICES),
    default="json",
    show_default=True,
    help="Webhook payload.",
)
@click.option("--to", "recipients", metavar="ADDRESSES", help="Email: addresses, separated by commas.")
@click.option(
    "--account",
    "account_id",
    type=int,
    default=None,
    help="Email: send through this account (default: Flask-Mail's own settings).",
)
def add_alert_channel(
    kind: str, url_env: str | None, format_: str, recipients: str | None, account_id: int | None
) -> None:
    """Add a channel; a webhook URL is a secret, so it never comes from an argument."""
    url = None
    if kind == "webhook":
        url = secret(url_env, True, "Webhook URL")
    channel = extension().alerts.add_channel(
        kind, url=url, format=format_, recipients=recipients or "", account_id=account_id
    )
    click.echo(f"Added alert channel {channel.id}: {channel.kind} to {channel.target}.")


@alerts_cli.command("remove")
@click.argument("channel_id", type=int)
def remove_alert_channel(channel_id: int) -> None:
    """Remove a channel."""
    extension().alerts.remove_channel(channel_id)
    click.echo(f"Removed alert channel {channel_id}.")


@alerts_cli.command("test")
@click.argument("channel_id", type=int)
def test_alert_channel(channel_id: int) -> None:
    """Send a test alert to a channel now."""
    alerts = extension().alerts
    alerts.send_test(channel_id)
    click.echo(f"A test alert was sent to {alerts.channel(channel_id).target}.")


@alerts_cli.command("check")
def check_alerts() -> None:
    """Notice a queue backlog and send the pending alerts (run it from cron every few minutes)."""
    report = extension().alerts.check()
    click.echo(
        f"Alerts: {report.sent} sent ({report.merged} counted into them), {report.held} held back by the throttle."
    )
    for error in report.failed:
        click.echo(f"Not delivered: {error}", err=True)


@command("summary")
@click.option("--days", type=click.IntRange(1, 366), default=7, show_default=True, help="How many days back.")
@click.option("--send", is_flag=True, help="Mail it (with Flask-Mail's own settings) instead of printing it.")
@click.option(
    "--to",
    "recipients",
    multiple=True,
    metavar="ADDRESS",
    help="Recipient of --send (repeatable); default: the addresses of the email alert channels.",
)
def summary(days: int, send: bool, recipients: tuple[str, ...]) -> None:
    """Per account: letters sent and failed, and the commonest errors (for a weekly cron job)."""
    ext = extension()
    if not send:
        click.echo(ext.summary(days).text(), nl=False)
        return
    to = list(recipients) or [
        r for c in ext.alerts.channels(active_only=True) if c.kind == "email" for r in c.recipients
    ]
    if not to:
        raise click.UsageError("Say where the summary goes: --to ADDRESS (or add an email alert channel).")
    ext.send_summary(to, days)
    click.echo(f"The summary of {days} days was sent to {', '.join(to)}.")


#: The commands this module adds to ``flask smtp-accounts``.
COMMANDS = (alerts_cli, summary)
