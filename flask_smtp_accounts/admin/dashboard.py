"""The dashboard: the landing page of the extension's admin category.

Counts per route and window, a chart of the chosen window, and what needs
a person: accounts cooling down, refused OAuth2 tokens (with a link to
sign in again), each route's last failure and the oldest queued letter.
Every figure is an aggregate of :class:`~flask_smtp_accounts.mail_stats.MailStats`.
"""

from __future__ import annotations

from flask import request
from flask.typing import ResponseReturnValue
from flask_admin import BaseView, expose
from flask_babel import format_date, format_datetime, format_time

from ..mail_stats import CHART_STEPS, WINDOWS, Bar, Failure
from .access import VIEW_LOGS, ProtectedView, state
from .chart import ChartBar, bar_chart
from .i18n import _, _l
from .messages import describe_attempt

WINDOW_WORDS = {"24h": _l("24 hours"), "7d": _l("7 days"), "30d": _l("30 days")}


def _bar_label(bar: Bar, window: str) -> str:
    return format_time(bar.start, "HH:mm") if window == "24h" else format_date(bar.start, "dd.MM")


def _describe_bar(bar: ChartBar, label: str) -> str:
    return _("%(time)s: %(sent)s sent, %(failed)s failed", time=label, sent=bar.sent, failed=bar.failed)


def failure_text(failure: Failure) -> str:
    """The stage and what the server said, in the page's language, as the message log says it."""
    return describe_attempt(
        {"error": failure.error, "stage": failure.stage, "code": failure.code, "reply": failure.reply}
    )


class DashboardView(ProtectedView, BaseView):
    """The state of the mail at a glance; needs ``view_logs``."""

    permission = VIEW_LOGS
    template = "smtp_accounts/dashboard.html"

    @expose("/")
    def index(self) -> ResponseReturnValue:
        stats = state().stats
        window = request.args.get("window", "24h")
        if window not in CHART_STEPS:
            window = "24h"
        totals, routes = stats.counts()
        bars = stats.chart(window)
        chart = bar_chart(
            bars,
            [_bar_label(bar, window) for bar in bars],
            describe=_describe_bar,
            title=_("Letters per hour, last 24 hours")
            if window == "24h"
            else _("Letters per day, last %(window)s", window=WINDOW_WORDS[window]),
        )
        oldest, queued = stats.oldest_queued()
        return self.render(
            self.template,
            window=window,
            windows=list(WINDOWS),
            window_words=WINDOW_WORDS,
            totals=totals,
            routes=routes,
            chart=chart,
            oldest_queued=oldest,
            queued=queued,
            cooling=stats.cooling(),
            token_refused=stats.token_refused(),
            failures=stats.last_failures(),
            failure_text=failure_text,
            when=lambda moment: format_datetime(moment) if moment else "",
        )
