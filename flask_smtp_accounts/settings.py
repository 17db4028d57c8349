"""The module's settings: their defaults and the read-only view of them.

The settings live in one database row (see ``models.py``); routing reads
them through :class:`SettingsInfo`, a frozen snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class SettingsInfo:
    """A snapshot of the settings row. Defaults are the original module's."""

    #: Route outgoing mail through the accounts. Off: plain Flask-Mail.
    enabled: bool = False
    #: Keep per-account logs of checks and sending.
    save_logs: bool = True
    #: 1 client lines; 2 plus server replies; 3 plus connection facts; 4 plus raw data.
    log_level: int = 2
    #: How long a log is kept, counted from its account's last change.
    log_rewrite_period: str = "day"
    #: A log growing past this many MB is cleared; 0 = no limit.
    max_log_size_mb: int = 10
    #: Bound on connecting and on every SMTP command, in seconds.
    timeout_s: int = 10
    #: Checking an account also sends a test letter.
    send_test_on_check: bool = False
    #: Where test letters go.
    test_recipient: str = ""
    #: Keep the body of delivered letters in the message log (off: only undelivered ones keep it).
    keep_bodies: bool = False
    #: Message log rows older than this many days are pruned; 0 = keep forever.
    message_retention_days: int = 30
    #: Seconds an account that failed at the connection level is skipped; 0 = never skipped.
    cooldown_s: int = 60
    #: Queue a letter no route delivered (``mail.send`` returns) instead of raising.
    queue_undelivered: bool = False
    #: Tries of a queued letter, the first send included, before it is marked failed.
    max_attempts: int = 5
    #: Wait before the second try of a queued letter; doubled for each later try (capped at a day).
    retry_backoff_s: int = 60
    #: Every letter goes through the outbox: ``mail.send`` stores it queued and returns; a drainer sends it.
    outbox_all: bool = False
    #: Bulk letters (``List-Unsubscribe``, ``Precedence: bulk``, ``bulk_sending()``) go through the outbox.
    outbox_bulk: bool = False
    #: Bumped by every change of an account or a setting; caches compare it.
    revision: int = 0


SETTING_NAMES = tuple(f.name for f in fields(SettingsInfo) if f.name != "revision")
DEFAULT_SETTINGS = SettingsInfo()
