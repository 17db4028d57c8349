"""One letter's envelope: what MAIL FROM and every RCPT TO say, and the commands that say it.

A value of its own so that an envelope written ahead (``transaction.py``,
with the data of the letter before) can be kept on its connection
(``connection.py``) and compared with the letter whose turn comes.
"""

from __future__ import annotations

import functools
import smtplib
from dataclasses import dataclass

CRLF = "\r\n"


@dataclass(frozen=True)
class Envelope:
    """What MAIL FROM and every RCPT TO of one letter say: its sender, its recipients, their options."""

    sender: str
    sender_options: tuple[str, ...]
    recipients: tuple[str, ...]
    recipient_options: tuple[str, ...]

    def commands(self, smtp: smtplib.SMTP) -> str:
        """MAIL FROM, every RCPT TO and DATA, each with its line end, as one pipelined write sends them."""
        options = list(self.recipient_options)
        commands = [_command(smtp, "mail", f"FROM:{_quoted_sender(self.sender)}", list(self.sender_options))]
        commands += [_command(smtp, "rcpt", f"TO:{smtplib.quoteaddr(r)}", options) for r in self.recipients]
        commands.append("data")
        return "".join(f"{command}{CRLF}" for command in commands)


@functools.lru_cache(maxsize=256)
def _quoted_sender(sender: str) -> str:
    """``smtplib.quoteaddr`` of the envelope sender, remembered: a newsletter has one, and every letter asks again.

    (Recipients are not remembered: in a newsletter they all differ.)
    """
    return smtplib.quoteaddr(sender)


def _command(smtp: smtplib.SMTP, verb: str, argument: str, options: list[str]) -> str:
    """One command line as ``smtplib.SMTP.mail`` and ``rcpt`` build it, without its line end."""
    if verb == "mail" and smtp.does_esmtp and any(o.lower() == "smtputf8" for o in options):
        if not smtp.has_extn("smtputf8"):
            raise smtplib.SMTPNotSupportedError("SMTPUTF8 not supported by server")
        smtp.command_encoding = "utf-8"
    line = f"{verb} {argument}{' ' + ' '.join(options) if options and smtp.does_esmtp else ''}"
    if "\r" in line or "\n" in line:
        escaped = line.replace("\n", "\\n").replace("\r", "\\r")
        raise ValueError(f"command and arguments contain prohibited newline characters: {escaped}")
    return line
