"""Local SMTP servers and TLS certificates for tests and demos.

Needs the ``test`` (or ``example``) extra, which brings aiosmtpd. The
servers listen on 127.0.0.1 only and record what they receive, so a site's
own tests can assert which account carried a letter::

    from flask_smtp_accounts.testing import SMTPServer, make_certs

    with SMTPServer(auth=("user", "secret")) as server:
        ...
        assert server.wait_for(1)[0].login == "user"
"""

from __future__ import annotations

from .certs import Certs, make_certs
from .oauth import OAuthServer
from .servers import (
    LOGIN,
    PASSWORD,
    AuthAttempt,
    Received,
    SMTPServer,
    free_port,
)
from .sockets import ClosingServer, HangingServer

__all__ = [
    "LOGIN",
    "PASSWORD",
    "AuthAttempt",
    "Certs",
    "ClosingServer",
    "HangingServer",
    "OAuthServer",
    "Received",
    "SMTPServer",
    "free_port",
    "make_certs",
]
