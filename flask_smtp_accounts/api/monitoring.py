"""The API of what an operator watches: the SMTP logs, health, quotas, the dashboard, alerts and the summary."""

from __future__ import annotations

import typing as t
from dataclasses import replace

from ..alerts import Alerts
from ..health import AccountHealth
from ..labels import NEW_ACCOUNT, route_label
from ..log_files import LogChunk, LogInfo
from ..mail_stats import MailStats
from ..quotas import Usage
from ..summary import Summary, build_summary, send_summary
from .base import APIBase


class MonitoringAPI(APIBase):
    """The SMTP logs, health and quotas, the dashboard, alerts and summary, and who may see the pages."""

    # --- logs ---------------------------------------------------------------

    def list_logs(self, *, start: int = 0, count: int | None = None) -> list[LogInfo]:
        """Every SMTP log: account id, kind (``send``/``check``), label, size and last write (UTC).

        Id 0 is the check log of accounts not saved yet. The log of a
        deleted account stays listed, labelled as deleted, until it is deleted.
        ``start`` and ``count`` take a page of the list; the labels are
        looked up for that page only, in one query.
        """
        state = self._state
        logs = state.smtp_logs.files.list()[start : None if count is None else start + count]
        ids = {log.account_id for log in logs if log.account_id}
        labels = {account.id: account.label for account in state.directory.accounts(ids)} if ids else {}
        return [
            replace(log, label=NEW_ACCOUNT if log.account_id == 0 else route_label(log.account_id, labels))
            for log in logs
        ]

    def read_log(self, account_id: int, kind: str, offset: int = 0, length: int = 65536) -> LogChunk:
        """Read up to ``length`` bytes of a log from ``offset`` (negative: from the end).

        A log is addressed by account id and kind only; anything else raises
        :class:`LogAddressError`, and a missing log :class:`LogNotFoundError`.
        """
        return self._state.smtp_logs.files.read(account_id, kind, offset, length)

    def delete_log(self, account_id: int, kind: str) -> bool:
        """Delete a log; ``False`` when there was none. Addressed like :meth:`read_log`."""
        return self._state.smtp_logs.files.delete(account_id, kind)

    def quota_usage(self, account_ids: t.Iterable[int]) -> dict[int, Usage]:
        """Letters and recipients each of ``account_ids`` sent in the last 24 hours, as its limits count them.

        Only accounts with a limit are counted (one query for them all);
        the others are missing from the answer.
        """
        return self._state.quotas.today(account_ids)

    def account_health(self) -> dict[int, AccountHealth]:
        """Each account's last connection failure and cool-down, as recorded by every process."""
        return self._state.health.report()

    # --- dashboard, alerts, summary ------------------------------------------------

    @property
    def alerts(self) -> Alerts:
        """The alert channels and events, and their delivery (see ``alerts.py``)::

        smtp_accounts.alerts.add_channel("webhook", url=..., format="slack")
        smtp_accounts.alerts.set_event("queue_backlog", threshold_minutes=15)
        smtp_accounts.alerts.check()  # from a scheduler: notice a backlog, send what is pending
        """
        return self._state.alerts

    @property
    def mail_stats(self) -> MailStats:
        """The dashboard's aggregates of the message log (counts, chart bars, troubles)."""
        return self._state.stats

    def summary(self, days: int = 7) -> Summary:
        """Per route, letters sent, failed and queued in the last ``days`` days, and the commonest errors."""
        return build_summary(self._state.stats, days)

    def send_summary(self, recipients: t.Sequence[str], days: int = 7) -> Summary:
        """Mail :meth:`summary` to ``recipients`` with Flask-Mail's own settings; returns it."""
        summary = self.summary(days)
        send_summary(summary, recipients)
        return summary

    def access_rule(self, rule: t.Callable[[str], bool]) -> t.Callable[[str], bool]:
        """Register who may use the admin pages; use as a decorator::

            @smtp_accounts.access_rule
            def can(permission: str) -> bool:
                return current_user.is_authenticated and current_user.is_admin

        ``permission`` is ``"view_logs"``, ``"manage_accounts"``,
        ``"manage_settings"``, ``"view_outbox"`` or ``"manage_outbox"``.
        Without a rule every page answers 403.
        """
        self._access_rule = rule
        return rule

    def is_allowed(self, permission: str) -> bool:
        """Whether the access rule grants ``permission`` now (always no without a rule)."""
        return self._access_rule is not None and bool(self._access_rule(permission))
