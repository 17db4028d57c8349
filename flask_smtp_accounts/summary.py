"""The weekly summary letter: per route, letters sent and failed, and the commonest errors.

Built from the same aggregates as the dashboard (``mail_stats.py``); sent
with Flask-Mail's own settings, like the alert letters that must not hang
on the accounts they report about.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from datetime import datetime, timedelta

from .flask_mail_hook import message_type, send_unrouted
from .labels import OWN_SETTINGS, route_label
from .mail_stats import WAITING, MailStats
from .message_info import FAILED, SENT, SUPPRESSED
from .models import utcnow


@dataclass(frozen=True)
class RouteSummary:
    account_id: int | None
    label: str
    sent: int
    failed: int
    queued: int
    top_errors: list[tuple[str, int]]


@dataclass(frozen=True)
class Summary:
    since: datetime
    until: datetime
    routes: list[RouteSummary]

    @property
    def days(self) -> int:
        return round((self.until - self.since) / timedelta(days=1))

    def text(self) -> str:
        """The letter's body: plain text, one block per route."""
        lines = [
            f"Mail from {self.since:%Y-%m-%d %H:%M} to {self.until:%Y-%m-%d %H:%M} UTC ({self.days} days)",
            "",
        ]
        if not self.routes:
            lines.append("No letters were sent.")
        for route in self.routes:
            lines.append(f"{route.label}: {route.sent} sent, {route.failed} failed, {route.queued} queued")
            for error, count in route.top_errors:
                lines.append(f"    {count} x {' '.join(error.split())[:300]}")
        totals = [sum(getattr(r, k) for r in self.routes) for k in ("sent", "failed", "queued")]
        lines += ["", f"Total: {totals[0]} sent, {totals[1]} failed, {totals[2]} queued"]
        return "\n".join(lines) + "\n"


def build_summary(stats: MailStats, days: int = 7, now: datetime | None = None) -> Summary:
    """The summary of the last ``days`` days, from grouped counts."""
    until = now or utcnow()
    since = until - timedelta(days=days)
    counts = stats.route_counts(since, until)
    labels = stats.route_labels()
    errors = stats.top_errors(since)
    routes = [
        RouteSummary(
            account_id,
            route_label(account_id, labels, OWN_SETTINGS),
            c.get(SENT, 0) + c.get(SUPPRESSED, 0),
            c.get(FAILED, 0),
            sum(c.get(status, 0) for status in WAITING),
            errors.get(account_id, []),
        )
        for account_id, c in sorted(counts.items(), key=lambda item: (item[0] is not None, item[0] or 0))
    ]
    return Summary(since, until, routes)


def send_summary(summary: Summary, recipients: t.Sequence[str]) -> None:
    """Mail the summary to ``recipients`` with Flask-Mail's own settings."""
    subject = f"Mail summary: {sum(r.sent for r in summary.routes)} sent, {sum(r.failed for r in summary.routes)} failed in {summary.days} days"
    send_unrouted(message_type()(subject=subject, recipients=list(recipients), body=summary.text()))
