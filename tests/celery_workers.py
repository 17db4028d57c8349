"""What the Celery tests share with their workers' site module, and which worker holds a connection.

The workers themselves are :class:`flask_smtp_accounts.testing.workers.CeleryWorker`
processes running ``celery_site``.
"""

from __future__ import annotations

import os
import pathlib

#: The environment variable holding the JSON that ``celery_site`` builds its site from.
SITE_VARIABLE = "SMTP_ACCOUNTS_CELERY_TEST_SITE"


def pid_of_client(port: int, candidates: set[int]) -> int | None:
    """Which of ``candidates`` holds the TCP socket whose local port on 127.0.0.1 is ``port`` (as ``ss -p`` shows)."""
    inode = None
    for line in pathlib.Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port:
            inode = fields[9]
            break
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in candidates:
        try:
            links = [os.readlink(fd) for fd in pathlib.Path(f"/proc/{pid}/fd").iterdir()]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if target in links:
            return pid
    return None
