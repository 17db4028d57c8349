"""The module's settings: each declared once, with its default, range, label and help.

The settings live in one database row (see ``models.py``); routing reads
them through :class:`SettingsInfo`, a frozen snapshot. Each field's
declaration (:func:`~flask_smtp_accounts.declarations.spec`) is also where
the row's columns, ``validate_settings``, the admin's settings page and the
README's table of settings come from.
"""

from __future__ import annotations

from dataclasses import dataclass

from .declarations import spec, specs
from .texts import N_

#: How long a log is kept, counted from its account's last change.
REWRITE_PERIODS = (("day", N_("day")), ("week", N_("week")), ("month", N_("month")), ("year", N_("year")))
LOG_LEVELS = (
    ("1", N_("1: client messages")),
    ("2", N_("2: client and server messages")),
    ("3", N_("3: client, server and connection information")),
    ("4", N_("4: client, server, connection and low-level data")),
)
#: The settings page's groups, in its order.
GENERAL, SENDING, MESSAGE_LOG, QUEUE = (
    N_("General"),
    N_("Sending"),
    N_("Message log"),
    N_("Queue and retries"),
)
SECONDS, MEGABYTES, DAYS = N_("s"), N_("MB"), N_("days")


@dataclass(frozen=True)
class SettingsInfo:
    """A snapshot of the settings row. Defaults are the original module's."""

    enabled: bool = spec(
        False,
        N_("Send mail through SMTP accounts"),
        N_(
            "Routes every outgoing letter through the account of its From address. Until this is on,"
            " nothing else of the extension works and letters go out with Flask-Mail's own settings."
        ),
        doc="Route outgoing mail through the accounts. Off: plain Flask-Mail, and nothing else of the"
        " extension acts on letters.",
        group=GENERAL,
    )
    save_logs: bool = spec(
        True,
        N_("Save sending logs"),
        N_("Keeps a log of connection checks and a log of sending for every account."),
        doc="Keep a log of checks and one of sending per account.",
        group=GENERAL,
    )
    log_level: int = spec(
        2,
        N_("Type of information in logs"),
        N_("How much of each SMTP conversation the logs keep. Passwords are never written."),
        doc="What the logs hold: 1 client commands; 2 plus server replies; 3 plus connection facts (address,"
        " TLS, certificate, timing); 4 plus the letter's raw data. The AUTH exchange is always redacted.",
        group=GENERAL,
        minimum=1,
        maximum=4,
        choices=LOG_LEVELS,
    )
    log_rewrite_period: str = spec(
        "day",
        N_("Log rewrite period"),
        N_(
            "How long a log is kept, counted from the last change of its account; then it starts over."
            " A log also starts over whenever its account is changed."
        ),
        doc="`day`, `week`, `month` or `year`: how long a log is kept, counted from its account's last"
        " change; then it starts over. A change of the account also starts its logs over.",
        group=GENERAL,
        choices=REWRITE_PERIODS,
        length=8,
    )
    max_log_size_mb: int = spec(
        10,
        N_("Max log file size"),
        N_("A log growing past this size is cleared. 0: no size check."),
        doc="A log growing past this many MB starts over; `0` = no size limit.",
        group=GENERAL,
        unit=MEGABYTES,
        minimum=0,
        maximum=1024,
    )
    timeout_s: int = spec(
        10,
        N_("Connection timeout"),
        N_("Limit for a connection check or a send; past it the operation fails with an error."),
        doc="Limit, in seconds, on connecting and on every SMTP command of a check or a send.",
        group=SENDING,
        unit=SECONDS,
        minimum=1,
        maximum=300,
    )
    send_test_on_check: bool = spec(
        False,
        N_("Send a letter when checking the connection"),
        N_("A check verifies the login only, unless this is on: then it also sends a test letter."),
        doc="Checking an account (and so saving it) also sends a test letter, not only logs in.",
        group=SENDING,
    )
    test_recipient: str = spec(
        "",
        N_("Test letters go to"),
        N_("The default recipient of test letters and of the letter a check sends."),
        doc="Where test letters go.",
        group=SENDING,
        check="email_or_empty",
        length=254,
    )
    keep_bodies: bool = spec(
        False,
        N_("Keep the text of delivered letters"),
        N_("Off: the message log keeps the text of undelivered letters only, for resending."),
        doc="Keep the body of delivered letters in the message log too (undelivered ones always keep theirs,"
        " for the retry).",
        group=MESSAGE_LOG,
    )
    message_retention_days: int = spec(
        30,
        N_("Keep the message log for"),
        N_("Older entries are removed. 0: kept forever."),
        doc="Message log rows older than this are pruned; `0` = keep forever.",
        group=MESSAGE_LOG,
        unit=DAYS,
        minimum=0,
        maximum=3650,
    )
    cooldown_s: int = spec(
        60,
        N_("Cool-down after a connection failure"),
        N_("An account whose server could not be reached is skipped for this long. 0: never skipped."),
        doc="Seconds an account that failed at the connection level is skipped (its backups take its letters);"
        " `0` = never skipped.",
        group=SENDING,
        unit=SECONDS,
        minimum=0,
        maximum=86400,
    )
    queue_undelivered: bool = spec(
        False,
        N_("Queue letters that could not be sent"),
        N_("Instead of failing, a letter no server took waits in the queue and is tried again later."),
        doc="Queue a letter that no route delivered (`mail.send` returns) instead of raising;"
        " `flask smtp-accounts retry` sends it later.",
        group=QUEUE,
    )
    max_attempts: int = spec(
        5,
        N_("Attempts per letter"),
        N_("Tries of a queued letter, the first send included, before it is given up."),
        doc="Tries of a queued letter, the first send included, before it is marked failed.",
        group=QUEUE,
        minimum=1,
        maximum=100,
    )
    retry_backoff_s: int = spec(
        60,
        N_("First retry after"),
        N_("The wait doubles after every further failed try, up to a day."),
        doc="Wait before the second try of a queued letter; doubled for each later try, at most a day.",
        group=QUEUE,
        unit=SECONDS,
        minimum=1,
        maximum=86400,
    )
    outbox_all: bool = spec(
        False,
        N_("Send every letter through the outbox"),
        N_(
            "Sending stores each letter in the queue and returns at once; `flask smtp-accounts deliver`"
            " (or a worker) sends it. Web requests never wait on a mail server."
        ),
        doc="Every letter goes through the outbox: `mail.send` stores it queued and returns at once;"
        " `flask smtp-accounts deliver` (or `deliver_queued()`, or a worker) sends it. See"
        ' "Outbox and bulk delivery".',
        group=QUEUE,
    )
    outbox_bulk: bool = spec(
        False,
        N_("Send bulk letters through the outbox"),
        N_("Newsletters (letters with List-Unsubscribe or Precedence: bulk) wait in the queue for a worker."),
        doc="Bulk letters (`List-Unsubscribe`, `Precedence: bulk` or `list`, or sent inside `bulk_sending()`)"
        " go through the outbox; others go out at once.",
        group=QUEUE,
    )
    #: Bumped by every change of an account or a setting; caches compare it (not a setting: undeclared).
    revision: int = 0


SETTINGS = specs(SettingsInfo)
SETTING_NAMES = tuple(setting.name for setting in SETTINGS)
DEFAULT_SETTINGS = SettingsInfo()
