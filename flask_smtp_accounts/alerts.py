"""Alerts: an email or a webhook post when mail goes wrong, throttled, sent outside the request.

**Noticing.** The extension's signals (``send_failed``,
``account_cooled_down``, ``oauth_token_refused``, ``quota_reached``) and
the periodic :meth:`Alerts.check` (a queue backlog) *record* an alert: one
row in ``smtp_accounts_alert``, status ``pending``, committed at once. The
request that noticed it does nothing more.

**Delivering.** :meth:`Alerts.deliver_pending` sends what is pending, from
a short daemon thread started after recording (``SMTP_ACCOUNTS_ALERT_THREAD``)
and from ``flask smtp-accounts alerts check`` (cron). The row is the truth,
not the thread: an alert noticed by a process that dies before the thread
ran is delivered by the next check, so none is lost.

**Throttling.** At most one alert per event and account every
``throttle_minutes``: a deliverer first moves ``last_sent_at`` of the
pair's row in ``smtp_accounts_alert_throttle`` forward with a conditional
UPDATE; only the one whose UPDATE changed the row sends, so two processes
(or two apps on one database) never both send. What is pending meanwhile
waits and goes out with the next one as "and 12 more since ...". An alert
whose every channel failed goes back to pending (and the pair's time back
to unset), up to :data:`MAX_ATTEMPTS` tries.

**Never about itself.** An alert letter sent through a failing account
fails too; while alerts are being delivered (:data:`delivering`), the
signal handlers record nothing.
"""

from __future__ import annotations

import threading
import typing as t
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import Flask

from . import signals
from .alert_channels import AlertChannels, delivering
from .alert_formats import AlertNote
from .errors import AlertDeliveryError, InvalidAlertError
from .labels import OWN_SETTINGS
from .models import Models, utcnow

if t.TYPE_CHECKING:
    from .crypto import Vault
    from .mail_stats import MailStats

LETTER_UNDELIVERED = "letter_undelivered"
ACCOUNT_COOLED_DOWN = "account_cooled_down"
OAUTH_TOKEN_REFUSED = "oauth_token_refused"
QUEUE_BACKLOG = "queue_backlog"
QUOTA_REACHED = "quota_reached"


@dataclass(frozen=True)
class EventKind:
    """An event that raises alerts: its title on the channels, and what a new site starts with."""

    title: str
    throttle_minutes: int = 60


#: Every event, in the order the admin page lists them.
EVENTS: dict[str, EventKind] = {
    LETTER_UNDELIVERED: EventKind("Letter undelivered"),
    ACCOUNT_COOLED_DOWN: EventKind("Account cooling down"),
    OAUTH_TOKEN_REFUSED: EventKind("OAuth2 token refused"),
    QUEUE_BACKLOG: EventKind("Queue backlog"),
    QUOTA_REACHED: EventKind("Sending quota reached"),
}
#: Minutes a letter may wait in the queue before the backlog event, by default.
DEFAULT_BACKLOG_MINUTES = 30
#: Tries of an alert whose every channel failed before it is given up.
MAX_ATTEMPTS = 5

PENDING = "pending"
SENDING = "sending"
SENT = "sent"
FAILED = "failed"


@dataclass(frozen=True)
class EventSetting:
    event: str
    title: str
    enabled: bool
    throttle_minutes: int
    threshold_minutes: int


@dataclass
class DeliveryReport:
    """What one :meth:`Alerts.deliver_pending` did: alerts sent, held back by the throttle, failed."""

    sent: int = 0
    merged: int = 0
    held: int = 0
    failed: list[str] = field(default_factory=list)


class Alerts(AlertChannels):
    """The alerts of one app: its channels (see :class:`AlertChannels`), events, outbox and throttle."""

    def __init__(
        self, models: Models, engine: t.Callable[[], sa.Engine], vault: Vault, stats: MailStats
    ) -> None:
        super().__init__(models, engine, vault)
        self._stats = stats
        #: One delivery thread per process at a time; ``_again`` asks it for one more round.
        self._thread_lock = threading.Lock()
        self._thread_running = False
        self._again = False
        self.events_table = models.AlertEvent.__table__
        self.alerts = models.Alert.__table__
        self.throttle = models.AlertThrottle.__table__

    # --- events ---------------------------------------------------------------

    def event_settings(self) -> list[EventSetting]:
        e = self.events_table
        with self._engine().connect() as conn:
            rows = {row.event: row for row in conn.execute(sa.select(e))}
        found = []
        for name, kind in EVENTS.items():
            row = rows.get(name)
            found.append(
                EventSetting(
                    name,
                    kind.title,
                    row.enabled if row else True,
                    row.throttle_minutes if row else kind.throttle_minutes,
                    row.threshold_minutes if row else DEFAULT_BACKLOG_MINUTES,
                )
            )
        return found

    def event_setting(self, event: str) -> EventSetting:
        return next(s for s in self.event_settings() if s.event == event)

    def set_event(
        self,
        event: str,
        *,
        enabled: bool | None = None,
        throttle_minutes: int | str | None = None,
        threshold_minutes: int | str | None = None,
    ) -> EventSetting:
        """Switch an event on or off, or change its throttle (or the backlog's threshold), in minutes.

        The minutes may come as text, as typed into the admin's form; they are checked here either way.
        """
        if event not in EVENTS:
            raise InvalidAlertError("event", f"one of {', '.join(EVENTS)}")
        current = self.event_setting(event)
        values = {
            "enabled": current.enabled if enabled is None else bool(enabled),
            "throttle_minutes": current.throttle_minutes
            if throttle_minutes is None
            else _minutes("throttle_minutes", throttle_minutes),
            "threshold_minutes": current.threshold_minutes
            if threshold_minutes is None
            else _minutes("threshold_minutes", threshold_minutes, low=1),
        }
        e = self.events_table
        with self._engine().begin() as conn:
            if not conn.execute(e.update().where(e.c.event == event).values(**values)).rowcount:
                conn.execute(e.insert().values(event=event, **values))
        return self.event_setting(event)

    # --- recording --------------------------------------------------------------

    def record(
        self, event: str, account_id: int | None, text: str, now: datetime | None = None
    ) -> int | None:
        """Keep an alert for delivery; ``None`` when the event is off, no channel listens, or alerts are being sent."""
        if delivering.get() or not self.event_setting(event).enabled or not self.channels(active_only=True):
            return None
        with self._engine().begin() as conn:
            key = conn.execute(
                self.alerts.insert().values(
                    event=event,
                    account_key=account_id or 0,
                    created_at=now or utcnow(),
                    status=PENDING,
                    text=text[:4000],
                )
            ).inserted_primary_key
        assert key is not None
        return int(key[0])

    def check_backlog(self, now: datetime | None = None) -> int | None:
        """Record the backlog alert when a letter has waited in the queue longer than the event's threshold."""
        now = now or utcnow()
        setting = self.event_setting(QUEUE_BACKLOG)
        oldest, count = self._stats.oldest_queued()
        if oldest is None or now - oldest < timedelta(minutes=setting.threshold_minutes):
            return None
        text = f"{count} letter(s) wait in the retry queue; the oldest since {oldest:%Y-%m-%d %H:%M} UTC."
        return self.record(QUEUE_BACKLOG, None, text, now)

    # --- delivering -------------------------------------------------------------

    def deliver_pending(self, now: datetime | None = None) -> DeliveryReport:
        """Send the pending alerts whose throttle allows, each pair's held ones counted into it."""
        report = DeliveryReport()
        a = self.alerts
        with self._engine().connect() as conn:
            pairs = conn.execute(
                sa.select(a.c.event, a.c.account_key).where(a.c.status == PENDING).distinct()
            ).all()
        throttles = {s.event: s.throttle_minutes for s in self.event_settings()}
        for event, account_key in pairs:
            claimed = self._claim(event, account_key, throttles.get(event, 0), now or utcnow())
            if claimed is None:
                report.held += 1
                continue
            previous, rows = claimed
            if rows:
                self._send_claimed(event, account_key, previous, rows, report)
        return report

    def _claim(
        self, event: str, account_key: int, throttle_minutes: int, now: datetime
    ) -> tuple[datetime | None, t.Sequence[sa.Row[t.Any]]] | None:
        """Take the pair's pending alerts if its throttle allows; ``None`` while it holds them back."""
        th, a = self.throttle, self.alerts
        pair = sa.and_(th.c.event == event, th.c.account_key == account_key)
        self._ensure_throttle_row(event, account_key)
        with self._engine().begin() as conn:
            previous = conn.execute(sa.select(th.c.last_sent_at).where(pair)).scalar()
            allowed = th.c.last_sent_at.is_(None) | (
                th.c.last_sent_at <= now - timedelta(minutes=throttle_minutes)
            )
            if not conn.execute(th.update().where(pair, allowed).values(last_sent_at=now)).rowcount:
                return None
            mine = sa.and_(a.c.event == event, a.c.account_key == account_key, a.c.status == PENDING)
            rows = conn.execute(sa.select(a).where(mine).order_by(a.c.id)).all()
            if rows:
                conn.execute(a.update().where(a.c.id.in_([r.id for r in rows])).values(status=SENDING))
        return previous, rows

    def _ensure_throttle_row(self, event: str, account_key: int) -> None:
        th = self.throttle
        with self._engine().connect() as conn:
            if conn.execute(
                sa.select(th.c.event).where(th.c.event == event, th.c.account_key == account_key)
            ).first():
                return
        try:
            with self._engine().begin() as conn:
                conn.execute(th.insert().values(event=event, account_key=account_key, last_sent_at=None))
        except sa.exc.IntegrityError:
            pass  # another process made it meanwhile

    def _send_claimed(
        self,
        event: str,
        account_key: int,
        previous: datetime | None,
        rows: t.Sequence[sa.Row[t.Any]],
        report: DeliveryReport,
    ) -> None:
        newest = rows[-1]
        note = AlertNote(
            event,
            EVENTS[event].title if event in EVENTS else event,
            newest.text,
            account_key or None,
            newest.created_at,
            more=len(rows) - 1,
            since=rows[0].created_at if len(rows) > 1 else None,
        )
        errors = []
        channels = self.channels(active_only=True)
        for channel in channels:
            try:
                self.send_to(channel, note)
            except AlertDeliveryError as err:
                errors.append(str(err))
        a, th = self.alerts, self.throttle
        ids = [r.id for r in rows]
        with self._engine().begin() as conn:
            if channels and len(errors) == len(channels):
                attempts = max(r.attempts for r in rows) + 1
                status = FAILED if attempts >= MAX_ATTEMPTS else PENDING
                conn.execute(
                    a.update()
                    .where(a.c.id.in_(ids))
                    .values(status=status, attempts=attempts, error="; ".join(errors)[:4000])
                )
                conn.execute(
                    th.update()
                    .where(th.c.event == event, th.c.account_key == account_key)
                    .values(last_sent_at=previous)
                )
            else:
                conn.execute(
                    a.update()
                    .where(a.c.id.in_(ids))
                    .values(status=SENT, sent_at=utcnow(), error="; ".join(errors)[:4000] or None)
                )
                report.sent += 1
                report.merged += len(rows) - 1
        report.failed.extend(errors)

    #: The name of the delivery thread (a site's tests may wait for it before tearing the app down).
    THREAD_NAME = "smtp-accounts-alerts"

    def deliver_soon(self, app: Flask) -> None:
        """Deliver the pending alerts from a daemon thread, one per process however many alerts a burst records."""
        with self._thread_lock:
            self._again = True
            if self._thread_running:
                return
            self._thread_running = True
        threading.Thread(target=self._deliver_rounds, args=(app,), name=self.THREAD_NAME, daemon=True).start()

    def _deliver_rounds(self, app: Flask) -> None:
        with app.app_context():
            while True:
                with self._thread_lock:
                    if not self._again:
                        self._thread_running = False
                        return
                    self._again = False
                try:
                    self.deliver_pending()
                except Exception:  # the alert stays pending for the next round or the periodic check
                    app.logger.exception("Delivering the pending SMTP accounts alerts failed")

    def check(self, now: datetime | None = None) -> DeliveryReport:
        """The periodic call: notice a queue backlog, then deliver what is pending."""
        self.check_backlog(now)
        return self.deliver_pending(now)


def _minutes(name: str, value: t.Any, low: int = 0) -> int:
    try:
        minutes = int(value)
    except (TypeError, ValueError):
        raise InvalidAlertError(name, "a whole number of minutes") from None
    if not low <= minutes <= 10080:
        raise InvalidAlertError(name, f"from {low} to 10080 minutes (a week)")
    return minutes


# --- the signals ----------------------------------------------------------------


def _record(app: Flask, event: str, account: t.Any, text: str) -> None:
    state = app.extensions.get("smtp_accounts")
    if state is None or delivering.get():
        return
    account_id = getattr(account, "id", None)
    if state.alerts.record(event, account_id, text) is not None and state.config.alert_thread:
        state.alerts.deliver_soon(app)


def _label(account: t.Any) -> str:
    return getattr(account, "label", None) or OWN_SETTINGS


@signals.send_failed.connect
def _on_send_failed(
    app: Flask, *, message: t.Any = None, account: t.Any = None, error: t.Any = None, **extra: t.Any
) -> None:
    subject = getattr(message, "subject", None)
    about = f" '{subject}'" if subject else ""
    _record(
        app,
        LETTER_UNDELIVERED,
        account,
        f"The letter{about} was not delivered through {_label(account)} or its backups: {error}",
    )


@signals.account_cooled_down.connect
def _on_cooled_down(app: Flask, *, account: t.Any, error: t.Any, cooldown_s: int, **extra: t.Any) -> None:
    _record(
        app,
        ACCOUNT_COOLED_DOWN,
        account,
        f"{_label(account)} is skipped for {cooldown_s} s after a connection failure: {error}",
    )


@signals.oauth_token_refused.connect
def _on_token_refused(app: Flask, *, account: t.Any, error: t.Any, **extra: t.Any) -> None:
    hint = getattr(error, "hint", None)
    _record(
        app,
        OAUTH_TOKEN_REFUSED,
        account,
        f"The OAuth2 token of {_label(account)} was refused: {error}" + (f" {hint}" if hint else ""),
    )


@signals.quota_reached.connect
def _on_quota_reached(app: Flask, *, account: t.Any, limit: t.Any = None, **extra: t.Any) -> None:
    _record(app, QUOTA_REACHED, account, f"{_label(account)} reached its sending limit: {limit}")
