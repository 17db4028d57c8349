"""Per-account SMTP logs: what a check or a send said to the server, for the administrator.

Every check and every letter sent through an account becomes one *entry*:
a first line with the time (UTC), the account, the letter's Message-ID
(sends) and the outcome, then the conversation, one line each::

    2024-05-01 12:00:00 UTC | account 3 (Hello <hello@example.com>) | Message-ID <id@example.com> | sent
    * connecting to smtp.example.com:587                     (level 3)
    S: 220 smtp.example.com ESMTP                            (level 2)
    C: EHLO www.example.com                                  (level 1)
    C: AUTH PLAIN [redacted]
    C: [letter data, 1532 bytes]
    D: Subject: Hello                                        (level 4)

Entries are separated by an empty line. ``log_level`` picks the lines, as
PHPMailer's SMTPDebug: 1 what the client sent (``C:``); 2 plus the server's
replies (``S:``); 3 plus facts about the connection (``*``: address, TLS
version, cipher, certificate, timings); 4 plus the letter's data as sent on
the wire (``D:``). The AUTH exchange is redacted in ``connection.py``,
before any line reaches this module.

Each entry goes to its account's file (``send_admin_smtp_<id>.log`` or
``check_admin_smtp_<id>.log``, see ``log_files.py``) and, as one
``logging`` record, to the loggers :data:`SEND_LOGGER` and
:data:`CHECK_LOGGER`, so that a site can also route it to its own handlers
(syslog, Sentry, JSON). A record's message is the entry's text; its
structured fields are ``smtp_kind``, ``smtp_account_id``, ``smtp_account``
(the label), ``smtp_message_id``, ``smtp_outcome``, ``smtp_transcript``
(the lines) and ``smtp_time``. Its level is INFO, or WARNING for a failure.

The files are written by the extension itself, not by a handler attached to
those loggers: they are the administrator's logs, governed by the settings
(``save_logs``, level, rotation), which a site's logging configuration
(levels, disabled loggers) must not silently empty; and two apps in one
process keep separate folders while loggers are process-wide.
"""

from __future__ import annotations

import logging
import time
import typing as t
from datetime import datetime

from .log_files import KINDS, LogFile, LogFiles
from .models import AccountInfo, utcnow
from .printable import printable
from .settings import SettingsInfo

#: Logger of the sending logs (one record per letter).
SEND_LOGGER = "flask_smtp_accounts.smtp.send"
#: Logger of the check logs (one record per check or test letter).
CHECK_LOGGER = "flask_smtp_accounts.smtp.check"

_loggers = {"send": logging.getLogger(SEND_LOGGER), "check": logging.getLogger(CHECK_LOGGER)}
# A library must not print through logging's last-resort handler when the site configured none.
logging.getLogger("flask_smtp_accounts.smtp").addHandler(logging.NullHandler())

#: The levels of ``log_level``.
CLIENT, SERVER, CONNECTION, DATA = 1, 2, 3, 4

_MiB = 1024 * 1024


class SMTPLogs:
    """The logs of one app: opens a log session per connection.

    ``clock`` returns the current UTC time (naive); tests replace it to move
    through rewrite periods without waiting.
    """

    def __init__(self, log_dir: str, *, clock: t.Callable[[], datetime] = utcnow) -> None:
        self.log_dir = log_dir
        self.files = LogFiles(log_dir)
        self.clock = clock

    def session(self, account: AccountInfo, kind: str, settings: SettingsInfo) -> LogSession | None:
        """A transcript for one connection, or ``None`` when ``save_logs`` is off.

        With ``None`` the connection does no log work at all.
        """
        if not settings.save_logs:
            return None
        if kind not in KINDS:
            raise ValueError(f"The kind of a log is 'send' or 'check', not {kind!r}.")
        return LogSession(self, account, kind, settings)


class LogSession:
    """The log of one connection: collects its lines and writes one entry per letter (or check).

    The connection reports lines through the ``Transcript`` methods
    (:meth:`client`, :meth:`server`, :meth:`event`, :meth:`data`); the
    caller marks letters with :meth:`begin` and :meth:`end`, and calls
    :meth:`close` when the connection is closed. Lines before the first
    :meth:`begin` (greeting, EHLO, STARTTLS, AUTH) belong to the first
    entry; lines after an :meth:`end` (QUIT) belong to the entry that ended,
    which is therefore written at the next :meth:`begin` or at :meth:`close`.
    The session keeps its log file open from its first entry to :meth:`close`.
    """

    def __init__(self, logs: SMTPLogs, account: AccountInfo, kind: str, settings: SettingsInfo) -> None:
        self._logs = logs
        self._account = account
        self._kind = kind
        self._level = settings.log_level
        self._period = settings.log_rewrite_period
        self._max_bytes = settings.max_log_size_mb * _MiB
        self._lines: list[str] = []
        self._message_id: str | None = None
        self._started: datetime | None = logs.clock()
        self._timer = time.perf_counter()
        self._ended: tuple[str | None, str, datetime | None] | None = None
        self._file: LogFile | None = None
        self._label = (
            f"account {account.id} ({account.label})" if account.id else f"new account ({account.label})"
        )

    # --- the transcript -------------------------------------------------------

    def client(self, line: str) -> None:
        """A command the client sent (level 1 and up)."""
        self._lines.append("C: " + printable(line))

    def server(self, code: int, lines: list[str]) -> None:
        """A reply of the server (level 2 and up)."""
        if self._level < SERVER:
            return
        if len(lines) == 1:
            self._lines.append(f"S: {code} {printable(lines[0])}")
            return
        last = len(lines) - 1
        self._lines.extend(
            f"S: {code}{' ' if i == last else '-'}{printable(text)}" for i, text in enumerate(lines)
        )

    def event(self, text: str) -> None:
        """A fact about the connection (level 3 and up)."""
        if self._level < CONNECTION:
            return
        self._lines.append("* " + printable(text))

    def data(self, payload: bytes) -> None:
        """The letter's data: its size at every level, its lines as sent at level 4."""
        self._lines.append(f"C: [letter data, {len(payload)} bytes]")
        if self._level < DATA:
            return
        lines = payload.split(b"\r\n")
        if lines and lines[-1] == b"":
            lines.pop()
        self._lines.extend("D: " + printable(line.decode("utf-8", "backslashreplace")) for line in lines)

    # --- entries ------------------------------------------------------------

    def begin(self, message_id: str | None) -> None:
        """A letter starts (``None`` for a check); write the entry that ended before it."""
        if self._ended is not None:
            self._write_ended()
        self._message_id = message_id
        if self._started is None:
            self._started = self._logs.clock()
            self._timer = time.perf_counter()

    def end(self, outcome: str) -> None:
        """The letter (or check) is done: ``sent``, ``ok`` or ``failed: <why>``."""
        if self._level >= CONNECTION:
            self._lines.append(f"* {self._kind} took {(time.perf_counter() - self._timer) * 1000:.1f} ms")
        if self._ended is not None:
            self._write_ended()
        self._ended = (self._message_id, outcome, self._started)
        self._message_id = None
        self._started = None

    def close(self) -> None:
        """The connection is closed: write what is left, and close the log file."""
        try:
            if self._ended is not None:
                self._write_ended()
            elif self._lines:
                self._write(self._message_id, "connection closed", self._started)
        finally:
            if self._file is not None:
                self._file.close()
                self._file = None

    def _write_ended(self) -> None:
        assert self._ended is not None
        message_id, outcome, started = self._ended
        self._ended = None
        self._write(message_id, outcome, started)

    def _write(self, message_id: str | None, outcome: str, started: datetime | None) -> None:
        lines, self._lines = self._lines, []
        logs, account, kind = self._logs, self._account, self._kind
        now = logs.clock()
        head = [(started or now).isoformat(" ", "seconds") + " UTC", self._label]
        if kind == "send":
            head.append(f"Message-ID {printable(message_id or 'unknown')}")
        head.append(printable(outcome))
        text = "\n".join([" | ".join(head), *lines])
        if self._file is None:
            self._file = logs.files.open(account.id, kind)
        self._file.append(
            (text + "\n\n").encode("utf-8"),
            account_changed=account.updated_at if account.id else None,
            period=self._period,
            max_bytes=self._max_bytes,
            now=now,
        )
        logger = _loggers[kind]
        level = logging.WARNING if outcome.startswith("failed") else logging.INFO
        if logger.isEnabledFor(level):
            extra = {
                "smtp_kind": kind,
                "smtp_account_id": account.id,
                "smtp_account": account.label,
                "smtp_message_id": message_id,
                "smtp_outcome": outcome,
                "smtp_transcript": tuple(lines),
                "smtp_time": started or now,
            }
            logger.handle(logger.makeRecord(logger.name, level, __file__, 0, text, (), None, extra=extra))
