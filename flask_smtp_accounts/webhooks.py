"""Posting JSON to a webhook: a deadline on every wait, a cap on what is read, the URL kept secret.

A webhook URL carries the credential that lets anyone post (Slack, Teams
and Discord put it in the path), so an error names the host only.
"""

from __future__ import annotations

import json
import typing as t
import urllib.error
import urllib.request
from urllib.parse import urlsplit

#: Seconds for connecting and for each read.
TIMEOUT_S = 10.0
#: Bytes of an answer read at most: a receiver cannot make us hold more.
MAX_ANSWER = 64 * 1024


class WebhookFailed(Exception):
    """The receiver was not reached or did not accept; the text holds no part of the URL but its host."""


def url_host(url: str) -> str:
    """The host of a webhook URL, the only part of it ever shown."""
    return urlsplit(url).hostname or ""


def check_url(url: str) -> str | None:
    """Why ``url`` cannot be a webhook, or ``None``."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "a webhook URL starts with https:// (or http://) and names a host"
    return None


def post_json(url: str, payload: t.Mapping[str, t.Any], *, timeout: float = TIMEOUT_S) -> int:
    """POST ``payload`` as JSON; the HTTP status on a 2xx answer, :class:`WebhookFailed` otherwise."""
    host = url_host(url)
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "flask-smtp-accounts alerts",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 - the scheme is checked on save
            answer.read(MAX_ANSWER)
            return int(answer.status)
    except urllib.error.HTTPError as err:
        err.read(MAX_ANSWER)
        raise WebhookFailed(f"the webhook at {host} answered HTTP {err.code}") from None
    except urllib.error.URLError as err:
        raise WebhookFailed(f"the webhook at {host} was not reached: {_reason(err.reason)}") from None
    except (TimeoutError, OSError) as err:
        raise WebhookFailed(f"the webhook at {host} was not reached: {_reason(err)}") from None


def _reason(reason: t.Any) -> str:
    """An OS error's words without its arguments (which can repeat the address)."""
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    if isinstance(reason, TimeoutError):
        return "timed out"
    return type(reason).__name__ if isinstance(reason, BaseException) else str(reason)
