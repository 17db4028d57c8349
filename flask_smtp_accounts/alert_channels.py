"""Alert channels: where alerts go (an email to listed addresses, or a webhook), and sending one alert to one.

A webhook URL carries the credential that lets anyone post, so it is
stored encrypted with the extension's :class:`~flask_smtp_accounts.crypto.Vault`,
never read back into a form, and named everywhere by its host only.
"""

from __future__ import annotations

import contextvars
import typing as t
from dataclasses import dataclass, field

import sqlalchemy as sa
from flask import current_app

from .addresses import normalize_email
from .alert_formats import FORMAT_CHOICES, FORMATTERS, AlertNote
from .errors import AlertChannelNotFoundError, AlertDeliveryError, InvalidAlertError, SMTPAccountsError
from .flask_mail_hook import message_type, send_unrouted
from .models import Models, utcnow
from .webhooks import WebhookFailed, check_url, post_json, url_host

if t.TYPE_CHECKING:
    from .crypto import Vault

KINDS = ("email", "webhook")
TEST = "test"

#: Set while an alert is being sent: the signal handlers then record nothing (no alert about the alert letter).
delivering: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "smtp_accounts_alert_delivering", default=False
)


@dataclass(frozen=True)
class ChannelInfo:
    """An alert channel as it may be shown: a webhook by its host only."""

    id: int
    kind: str
    format: str
    url_host: str
    account_id: int | None
    recipients: tuple[str, ...]
    active: bool
    url_encrypted: str | None = field(default=None, repr=False)

    @property
    def target(self) -> str:
        """Where it sends, for people: the webhook's host or the addresses."""
        return self.url_host if self.kind == "webhook" else ", ".join(self.recipients)


class AlertChannels:
    """The channel table of one app, and sending to a channel."""

    def __init__(self, models: Models, engine: t.Callable[[], sa.Engine], vault: Vault) -> None:
        self._engine = engine
        self._vault = vault
        self.channels_table = models.AlertChannel.__table__
        self.accounts = models.Account.__table__

    # --- channels -------------------------------------------------------------

    def channels(self, *, active_only: bool = False) -> list[ChannelInfo]:
        c = self.channels_table
        query = sa.select(c).order_by(c.c.id)
        if active_only:
            query = query.where(c.c.active.is_(True))
        with self._engine().connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [_channel(row) for row in rows]

    def add_channel(
        self,
        kind: str,
        *,
        url: str | None = None,
        format: str = "json",  # noqa: A002 - the column's name
        recipients: t.Sequence[str] | str = (),
        account_id: int | None = None,
    ) -> ChannelInfo:
        """Add a webhook (``url``, ``format``) or an email channel (``recipients``, ``account_id``)."""
        values = self._channel_values(
            kind, url=url, format=format, recipients=recipients, account_id=account_id
        )
        with self._engine().begin() as conn:
            key = conn.execute(
                self.channels_table.insert().values(created_at=utcnow(), **values)
            ).inserted_primary_key
        assert key is not None
        return self.channel(int(key[0]))

    def update_channel(self, channel_id: int, *, url: str | None = None, **changes: t.Any) -> ChannelInfo:
        """Change a channel; an empty ``url`` keeps the stored one (it is never shown to be typed again)."""
        current = self.channel(channel_id)
        merged = {
            "format": changes.get("format", current.format),
            "recipients": changes.get("recipients", current.recipients),
            "account_id": changes.get("account_id", current.account_id),
        }
        values = self._channel_values(
            current.kind, url=url or None, keep_url=current.kind == "webhook", **merged
        )
        if "active" in changes:
            values["active"] = bool(changes["active"])
        with self._engine().begin() as conn:
            conn.execute(
                self.channels_table.update().where(self.channels_table.c.id == channel_id).values(**values)
            )
        return self.channel(channel_id)

    def _channel_values(
        self,
        kind: str,
        *,
        url: str | None,
        format: str,
        recipients: t.Sequence[str] | str,  # noqa: A002
        account_id: int | None,
        keep_url: bool = False,
    ) -> dict[str, t.Any]:
        if kind == "webhook":
            if format not in FORMAT_CHOICES:
                raise InvalidAlertError("format", f"one of {', '.join(FORMAT_CHOICES)}")
            values: dict[str, t.Any] = {"kind": kind, "format": format, "recipients": "", "account_id": None}
            if url:
                problem = check_url(url)
                if problem:
                    raise InvalidAlertError("url", problem)
                values.update(url_encrypted=self._vault.encrypt(url.strip()), url_host=url_host(url.strip()))
            elif not keep_url:
                raise InvalidAlertError("url", "a webhook needs its URL")
            return values
        if kind == "email":
            addresses = recipients.split(",") if isinstance(recipients, str) else list(recipients)
            clean = [
                normalize_email("recipients", a.strip(), InvalidAlertError) for a in addresses if a.strip()
            ]
            if not clean:
                raise InvalidAlertError("recipients", "at least one address")
            if account_id is not None and not self._account_exists(account_id):
                raise InvalidAlertError("account_id", f"no account with id {account_id}")
            return {
                "kind": kind,
                "format": "",
                "url_encrypted": None,
                "url_host": "",
                "recipients": ",".join(clean),
                "account_id": account_id,
            }
        raise InvalidAlertError("kind", f"one of {', '.join(KINDS)}")

    def _account_exists(self, account_id: int) -> bool:
        a = self.accounts
        with self._engine().connect() as conn:
            return conn.execute(sa.select(a.c.id).where(a.c.id == account_id)).first() is not None

    def channel(self, channel_id: int) -> ChannelInfo:
        c = self.channels_table
        with self._engine().connect() as conn:
            row = conn.execute(sa.select(c).where(c.c.id == channel_id)).mappings().first()
        if row is None:
            raise AlertChannelNotFoundError(channel_id)
        return _channel(row)

    def remove_channel(self, channel_id: int) -> None:
        c = self.channels_table
        with self._engine().begin() as conn:
            if not conn.execute(c.delete().where(c.c.id == channel_id)).rowcount:
                raise AlertChannelNotFoundError(channel_id)

    def send_to(self, channel: ChannelInfo, note: AlertNote) -> None:
        """Send one alert to one channel now; :class:`AlertDeliveryError` says why not (a webhook by its host)."""
        token = delivering.set(True)
        try:
            if channel.kind == "webhook":
                assert channel.url_encrypted is not None
                url = self._vault.decrypt(channel.url_encrypted)
                try:
                    post_json(url, FORMATTERS[channel.format](note))
                except WebhookFailed as err:
                    raise AlertDeliveryError(channel.id, str(err)) from None
            else:
                self._email(channel, note)
        finally:
            delivering.reset(token)

    def _email(self, channel: ChannelInfo, note: AlertNote) -> None:
        message = message_type()(
            subject=f"[{note.title}] {note.line}"[:200],
            recipients=list(channel.recipients),
            body=note.line + "\n",
        )
        try:
            if channel.account_id is None:
                send_unrouted(message)
            else:
                a = self.accounts
                with self._engine().connect() as conn:
                    row = conn.execute(
                        sa.select(a.c.sender_name, a.c.sender_email).where(a.c.id == channel.account_id)
                    ).first()
                if row is None:
                    raise AlertDeliveryError(channel.id, f"account {channel.account_id} no longer exists")
                message.sender = (row.sender_name, row.sender_email) if row.sender_name else row.sender_email
                current_app.extensions["mail"].send(message)
        except AlertDeliveryError:
            raise
        except (
            SMTPAccountsError,
            OSError,
            AssertionError,
        ) as err:  # smtplib's errors are OSErrors; Flask-Mail asserts
            raise AlertDeliveryError(channel.id, f"the alert letter was not sent: {err}") from None

    def send_test(self, channel_id: int) -> None:
        """Send a test alert to one channel now, past the throttle; raises :class:`AlertDeliveryError`."""
        note = AlertNote(
            TEST,
            "Test alert",
            "This is a test alert from flask-smtp-accounts: the channel works.",
            None,
            utcnow(),
        )
        self.send_to(self.channel(channel_id), note)


def _channel(row: sa.RowMapping) -> ChannelInfo:
    return ChannelInfo(
        id=row["id"],
        kind=row["kind"],
        format=row["format"],
        url_host=row["url_host"],
        account_id=row["account_id"],
        recipients=tuple(r for r in row["recipients"].split(",") if r),
        active=row["active"],
        url_encrypted=row["url_encrypted"],
    )
