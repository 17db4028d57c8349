"""The extension object, its per-app state, and the Python API.

The admin pages and the command line are thin layers over the methods of
:class:`SMTPAccounts`; the logic they call lives in the modules named for it.
"""

from __future__ import annotations

import contextlib
import functools
import typing as t
import warnings
from dataclasses import replace

import sqlalchemy as sa
from flask import Flask, current_app, has_app_context

from . import flask_mail_hook, message_export, outbox, outbox_status, resend_copy, retry
from .alerts import Alerts
from .check import CheckResult, run_check
from .config import read_config
from .errors import AccountCheckFailed as AccountCheckFailed  # importable from here too, as sites already do
from .errors import (
    AccountInUseError,
    AccountNotFoundError,
    InvalidAccountError,
    InvalidAddressError,
    UnknownFieldError,
)
from .failover import check_backups
from .health import AccountHealth
from .ids import IdConverter, parse_id
from .labels import NEW_ACCOUNT, route_label
from .log_files import LogChunk, LogInfo
from .mail_stats import MailStats
from .message_log import MessageInfo, Page
from .models import (
    OAUTH_SECRETS,
    SETTABLE_FIELDS,
    SETTINGS_ID,
    AccountInfo,
    Models,
    make_models,
    settings_info,
)
from .outbox import DeliveryReport
from .outbox_status import OutboxLine
from .quotas import Usage
from .routing import Choice, bulk_sending, choose_route, split_sender
from .settings import DEFAULT_SETTINGS, SettingsInfo
from .state import AppState
from .summary import Summary, build_summary, send_summary
from .validation import (
    SMTP_DESTINATION,
    TOKEN_DESTINATION,
    normalize_email,
    secrets_given_again,
    validate_account,
    validate_settings,
)

if t.TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy

#: Every account field the API takes: the settable ones and the write-only OAuth2 secrets (an empty
#: secret keeps the stored one, like the password).
ACCOUNT_FIELDS: tuple[str, ...] = SETTABLE_FIELDS + tuple(OAUTH_SECRETS)


#: Called with an account's row inside the transaction that saves or deletes it (flask-admin's
#: ``on_model_change``/``on_model_delete`` hooks run there).
BeforeCommit = t.Callable[[t.Any], None]


class SMTPAccounts:
    """Sends every letter of a Flask-Mail site through the SMTP account of its From address.

    ::

        db = SQLAlchemy(app)
        Mail(app)
        smtp_accounts = SMTPAccounts(app, db=db)

    or, with an app factory, ``smtp_accounts.init_app(app, db=db)``.
    Flask-SQLAlchemy and Flask-Mail must be initialised on the app first:
    the extension finds Flask-Mail's state on the app, so it needs no
    ``mail`` object (``mail=`` is accepted with a DeprecationWarning for one release).
    """

    def __init__(self, app: Flask | None = None, *, db: SQLAlchemy | None = None, mail: t.Any = None) -> None:
        _warn_mail_argument(mail)
        self.db = db
        self._models: Models | None = None
        self._access_rule: t.Callable[[str], bool] | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask, *, db: SQLAlchemy | None = None, mail: t.Any = None) -> None:
        """Set the extension up on ``app``."""
        _warn_mail_argument(mail)
        if "smtp_accounts" in app.extensions:
            raise RuntimeError("SMTPAccounts is already initialised on this app; call init_app once per app.")
        db = db or self.db
        if db is None:
            raise RuntimeError(
                "SMTPAccounts needs the app's Flask-SQLAlchemy db: SMTPAccounts(app, db=db)"
                " or init_app(app, db=db)."
            )
        if "sqlalchemy" not in app.extensions:
            raise RuntimeError(
                "Flask-SQLAlchemy must be initialised on this app before SMTPAccounts: call db.init_app(app) first."
            )
        if "mail" not in app.extensions:
            raise RuntimeError(
                "Flask-Mail must be initialised on this app before SMTPAccounts: call Mail(app) or mail.init_app(app) first."
            )
        self.db = db
        config = read_config(app)
        models = self._bind_models(db, config.bind_key)
        app.extensions["smtp_accounts"] = AppState(self, db, models, config)
        app.url_map.converters["smtp_accounts_id"] = IdConverter
        flask_mail_hook.install()
        if config.register_cli:
            from .cli import smtp_accounts_cli

            app.cli.add_command(smtp_accounts_cli)

    def _bind_models(self, db: SQLAlchemy, bind_key: str | None) -> Models:
        """The models on ``db`` (declared once per db); each app keeps those of its own db."""
        models = make_models(db, bind_key)
        if self._models is None:
            self._models = models
        return models

    @property
    def _state(self) -> AppState:
        try:
            return t.cast(AppState, current_app.extensions["smtp_accounts"])
        except KeyError:
            raise RuntimeError(
                "SMTPAccounts is not initialised on the current app: call init_app(app) first."
            ) from None

    # --- models -------------------------------------------------------------

    def _models_or_fail(self) -> Models:
        state = current_app.extensions.get("smtp_accounts") if has_app_context() else None
        if state is not None and state.ext is self:
            return t.cast(Models, state.models)
        if self._models is None:
            if self.db is None:
                raise RuntimeError("The models need a db: SMTPAccounts(db=db) or init_app(app, db=db).")
            self._models = make_models(self.db)
        return self._models

    @property
    def Account(self) -> t.Any:  # noqa: N802 - a model class
        """The account model (table ``smtp_accounts_account``)."""
        return self._models_or_fail().Account

    @property
    def Settings(self) -> t.Any:  # noqa: N802 - a model class
        """The settings model (one row, table ``smtp_accounts_settings``)."""
        return self._models_or_fail().Settings

    # --- settings -----------------------------------------------------------

    @property
    def settings(self) -> SettingsInfo:
        """The current settings, read fresh (a frozen snapshot)."""
        return self._state.directory.settings()

    def update_settings(self, **changes: t.Any) -> SettingsInfo:
        """Validate and save setting changes, e.g. ``update_settings(enabled=True)``.

        Raises :class:`InvalidSettingError` naming the field; nothing is written then.
        """
        clean = validate_settings(changes)
        session = self._state.db.session
        row = session.get(self.Settings, SETTINGS_ID)
        if row is None:
            row = self.Settings(id=SETTINGS_ID, **{**_defaults(), **clean})
            session.add(row)
        else:
            for name, value in clean.items():
                setattr(row, name, value)
        session.commit()
        return settings_info(row)

    # --- accounts -----------------------------------------------------------

    def list_accounts(self, ids: t.Collection[int] | None = None) -> list[AccountInfo]:
        """Every account (or those of ``ids`` that exist), active or not, in id order.

        Frozen :class:`AccountInfo` copies, read fresh; secrets only as ciphertext.
        """
        return list(self._state.directory.accounts(ids))

    def get_account(self, account_id: int) -> t.Any:
        """The account's row with this id; :class:`AccountNotFoundError` (a ``LookupError``) when there is none.

        A row of the site's session, unlike :meth:`list_accounts`' frozen
        copies: ``add_account`` and ``update_account`` return rows too.
        """
        key = parse_id(account_id)
        account = None if key is None else self._state.db.session.get(self.Account, key)
        if account is None:
            raise AccountNotFoundError(account_id)
        return account

    def add_account(
        self,
        *,
        password: str | None = None,
        check: bool = True,
        before_commit: BeforeCommit | None = None,
        **fields: t.Any,
    ) -> t.Any:
        """Create an account, after checking it against its server; returns its row.

        ``fields`` are the account's columns (``sender_email``, ``host``,
        ``port``, ``security``, ``auth``, ``login``...). With ``check`` on, a
        failed check raises :class:`AccountCheckFailed` and nothing is saved.
        ``before_commit(row)`` runs once the account is valid and checked, in
        the transaction that saves it: what it raises leaves nothing written.
        """
        account = self.Account(**_account_defaults(fields))
        return self._save(account, password, check, is_new=True, before_commit=before_commit)

    def update_account(
        self,
        account_id: int,
        *,
        password: str | None = None,
        check: bool = True,
        before_commit: BeforeCommit | None = None,
        **fields: t.Any,
    ) -> t.Any:
        """Change an account; an empty ``password`` keeps the stored one. Returns its row.

        A change of where a stored secret goes (server, port, security,
        login, OAuth2 endpoints) needs that secret again: else
        :class:`InvalidAccountError` on its field, and nothing is sent anywhere.
        ``before_commit`` as in :meth:`add_account`.
        """
        account = self.get_account(account_id)
        unknown = set(fields) - set(ACCOUNT_FIELDS)
        if unknown:
            raise UnknownFieldError(unknown)
        session = self._state.db.session
        before = {name: getattr(account, name) for name in (*SMTP_DESTINATION, *TOKEN_DESTINATION)}
        for name, value in fields.items():
            if name in OAUTH_SECRETS and not value:
                continue
            setattr(account, name, value)
        given = {name for name in OAUTH_SECRETS if fields.get(name)} | ({"password"} if password else set())
        try:
            secrets_given_again(before, self.account_info(account, password), given)
            return self._save(account, password, check, is_new=False, before_commit=before_commit)
        except Exception:
            session.rollback()
            raise

    def delete_account(self, account_id: int, *, before_commit: BeforeCommit | None = None) -> None:
        """Delete an account; :class:`AccountInUseError` while another account lists it as a backup.

        The delete is refused rather than the other accounts' backups
        changed: which account stands in when one fails is for a person to
        choose, not a side effect of a delete. ``before_commit(row)`` runs
        once the delete is allowed, before the row goes, in its transaction:
        what it raises leaves the account in place.
        """
        session = self._state.db.session
        account = self.get_account(account_id)
        Account = self.Account  # noqa: N806 - a model class
        listed = session.execute(
            sa.select(Account.id, Account.backup_ids)
            .where(Account.__table__.c.backup_ids != "")
            .order_by(Account.id)
        )
        used_by = tuple(row.id for row in listed if account.id in row.backup_ids)
        if used_by:
            raise AccountInUseError(account.id, used_by)
        with _committed(session):
            if before_commit is not None:
                before_commit(account)
            session.delete(account)

    def _save(
        self,
        account: t.Any,
        password: str | None,
        check: bool,
        *,
        is_new: bool,
        before_commit: BeforeCommit | None = None,
    ) -> t.Any:
        info = self.account_info(account, password)
        check_backups(self._state.engine(), self.Account, account.id, info.backup_ids)
        if check:
            result = self.check_account(info, password=password)
            if not result.ok:
                raise AccountCheckFailed(result)
            self._keep_rotated_refresh_token(account, info)
        if password:
            account.password = password
        session = self._state.db.session
        with _committed(session):
            if is_new:
                session.add(account)
            if before_commit is not None:
                before_commit(account)
        return account

    def _keep_rotated_refresh_token(self, account: t.Any, info: AccountInfo) -> None:
        """Save the refresh token the provider rotated to while the account was checked."""
        if info.auth != "oauth2" or not info.oauth_refresh_token_encrypted:
            return
        state = self._state
        given = state.vault.decrypt(info.oauth_refresh_token_encrypted)
        latest = state.access_tokens.latest_refresh_token(given)
        if latest and latest != given:
            account.oauth_refresh_token = latest

    def account_info(self, account: t.Any, password: str | None = None) -> AccountInfo:
        """Validate an account (a model, a mapping or an ``AccountInfo``) into an ``AccountInfo``.

        Raises :class:`InvalidAccountError` naming the first bad field.
        """
        if isinstance(account, AccountInfo):
            values = {name: getattr(account, name) for name in AccountInfo.__dataclass_fields__}
        elif isinstance(account, t.Mapping):
            values = _account_defaults(dict(account))
            values.setdefault("id", 0)
            values.setdefault("password_encrypted", None)
        else:
            values = {name: getattr(account, name) for name in AccountInfo.__dataclass_fields__}
        values = {**_account_defaults({}), **{k: v for k, v in values.items() if v is not None}}
        values["has_password"] = bool(password or values.get("password_encrypted"))
        for secret, column in OAUTH_SECRETS.items():
            plain = values.pop(secret, None)
            if plain:  # given in a mapping: carried encrypted, like a stored one
                values[column] = self._state.vault.encrypt(plain)
            values[f"has_{secret}"] = bool(values.get(column))
        clean = validate_account(values)
        values.update(clean)
        values.pop("has_password")
        values["id"] = values.get("id") or 0
        values.setdefault("password_encrypted", None)
        values.setdefault("updated_at", None)
        return AccountInfo(**{k: values[k] for k in AccountInfo.__dataclass_fields__ if k in values})

    def check_account(
        self, account: t.Any, password: str | None = None, send_test: bool | None = None
    ) -> CheckResult:
        """Connect, say EHLO, start TLS, log in (and send a test letter), then QUIT.

        ``password`` overrides the stored one. ``send_test`` defaults to the
        ``send_test_on_check`` setting. The conversation goes to the check
        log of the account (id 0 for one not saved yet).
        """
        state = self._state
        info = self.account_info(account, password)
        settings = state.directory.settings()
        send = settings.send_test_on_check if send_test is None else send_test
        secret = password if password else functools.partial(state.password_of, info)
        result = run_check(
            state, settings, info, secret, send_test=send, recipient=settings.test_recipient or None
        )
        if result.ok and info.id:
            state.health.lift(info.id)
        return result

    def send_test_letter(self, account: t.Any, recipient: str | None = None) -> CheckResult:
        """Send a test letter through ``account`` to ``recipient`` (default: the settings' test recipient)."""
        state = self._state
        info = self.account_info(account)
        settings = state.directory.settings()
        return run_check(
            state,
            settings,
            info,
            functools.partial(state.password_of, info),
            send_test=True,
            recipient=recipient or settings.test_recipient or None,
            kind="check",
        )

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
        labels = {account.id: account.label for account in self.list_accounts(ids)} if ids else {}
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

    # --- routing ------------------------------------------------------------

    def choose_account(self, message: t.Any, *, bulk: bool | None = None) -> Choice:
        """Which account a letter would go through, and by which rule, without sending.

        ``message`` is a Flask-Mail ``Message`` or a sender (``"Name <addr>"``,
        an address, or a ``(name, address)`` tuple). ``bulk`` overrides the
        bulk detection. A sender without a valid address raises
        :class:`InvalidAddressError`.
        """
        state = self._state
        headers: t.Mapping[str, str]
        if isinstance(message, (str, tuple)):
            sender, headers = message, {}
        else:
            sender, headers = flask_mail_hook.sender_of(message)
        try:
            normalize_email("sender", split_sender(sender)[1])
        except InvalidAccountError:
            raise InvalidAddressError(f"{str(sender)!r} holds no valid email address.") from None
        settings = state.directory.settings()
        return choose_route(settings, state.directory.candidates, sender, headers, bulk)

    bulk_sending = staticmethod(bulk_sending)

    # --- message log, failover and the retry queue -------------------------------

    def messages(
        self,
        *,
        status: str | None = None,
        account_id: int | None = None,
        address: str | None = None,
        subject: str | None = None,
        message_id: str | None = None,
        search: str | None = None,
        since: t.Any = None,
        until: t.Any = None,
        page: int = 1,
        per_page: int = 50,
    ) -> Page:
        """A page of the message log, newest first.

        ``status``: sent, suppressed, failed, queued, claimed (a drainer
        holds it), sending, cancelled, or ``interrupted`` (left ``sending``
        by a process that stopped: outcome unknown, never sent again
        automatically). ``account_id`` 0:
        letters sent through Flask-Mail's own settings. ``address``: part of
        the From or of any recipient; ``subject``: part of the subject;
        ``message_id``: part of the Message-ID (angle brackets optional);
        ``search``: part of any of these. ``since``/``until``: datetimes (UTC).
        """
        return self._state.message_log.search(
            status=status,
            account_id=account_id,
            address=address,
            subject=subject,
            message_id=message_id,
            search=search,
            since=since,
            until=until,
            page=page,
            per_page=per_page,
        )

    def export_messages(self, fmt: str = "csv", **filters: t.Any) -> t.Iterator[str]:
        """The message log rows matching ``filters`` (as :meth:`messages` takes them) as CSV or JSON text pieces.

        A generator: rows are read in chunks as it is consumed, so an
        export of any size takes constant memory. Bodies are not exported.
        """

        return message_export.export(self._state.message_log, fmt, **filters)

    def get_message(self, record_id: int) -> MessageInfo:
        """One letter of the message log; :class:`MessageNotFoundError` (a ``LookupError``) when there is none."""
        return self._state.message_log.get(record_id)

    def resend_message(self, record_id: int) -> MessageInfo:
        """Send a failed, queued or interrupted letter again now, with its Message-ID, to the recipients it has not reached.

        Raises :class:`ResendError` for a letter a server already accepted,
        and :class:`DeliveryError` when no route delivered it.
        """

        return retry.resend(self._state, record_id)

    def resend_copy(self, record_id: int, recipients: t.Sequence[str] | None = None) -> MessageInfo:
        """Send a logged letter again as a new letter (new row, new Message-ID), to ``recipients`` or its own.

        For a delivered letter (its body is kept with the ``keep_bodies``
        setting) or a copy to another address; the new row's ``resend_of``
        names the original. Raises :class:`ResendError` when the body was
        not kept and :class:`DeliveryError` when no route delivered it.
        """

        return resend_copy.resend_copy(self._state, record_id, recipients)

    def retry_queue(self, *, limit: int | None = None) -> t.Any:
        """Send the queued letters that are due (also prunes old rows); returns a :class:`RetryReport`.

        Run it from a scheduler, or as ``flask smtp-accounts retry``.
        """

        return retry.retry_queue(self._state, limit=limit)

    # --- the outbox ----------------------------------------------------------------

    def outbox(self) -> t.ContextManager[None]:
        """Store every letter sent inside the block (this thread) in the queue, and return at once::

            with smtp_accounts.outbox():
                for msg in newsletter:
                    mail.send(msg)
            smtp_accounts.deliver_queued(connections=8)  # or `flask smtp-accounts deliver`, or a worker

        Each letter is routed as usual and its row, ``queued``, names the
        account chosen for it and keeps its body and Message-ID. Bad input
        (no recipients, a bad header) raises as it does without the outbox.
        The ``outbox_all`` and ``outbox_bulk`` settings do the same for
        every letter, or every bulk letter.
        """
        return flask_mail_hook.outbox()

    def deliver_queued(
        self,
        connections: int = 8,
        limit: int | None = None,
        *,
        progress: t.Callable[[DeliveryReport], None] | None = None,
    ) -> DeliveryReport:
        """Send the due letters of the queue over up to ``connections`` connections at once (threads of this process).

        ``limit``: at most this many letters (``None``: until none is due).
        ``progress`` is called with the report so far after each batch.
        ``connections`` outside 1..100 raises :class:`InvalidArgumentError`
        before anything is claimed. Other processes and machines may drain
        the same queue at once: no letter is sent twice.
        """

        return outbox.deliver_queued(
            self._state,
            current_app._get_current_object(),  # type: ignore[attr-defined]
            connections=connections,
            limit=limit,
            progress=progress,
        )

    def deliver_ids(self, ids: t.Iterable[int]) -> DeliveryReport:
        """Claim exactly these message log rows (those still due) and send them on this thread's connections.

        What a worker task calls with the ids :meth:`queued_ids` handed out;
        rows another worker holds, or no longer waiting, are skipped.
        """

        return outbox.deliver_ids(self._state, ids)

    def queued_ids(self, limit: int, account_id: int | None = None) -> list[int]:
        """Ids of the letters due now, lowest first, without claiming them (``account_id`` 0: Flask-Mail's route)."""

        return outbox.queued_ids(self._state, limit, account_id)

    def outbox_status(self) -> list[OutboxLine]:
        """Per account: letters waiting and being sent, sent and failed in 24 h, letters a minute, time left, paused."""

        return outbox_status.outbox_status(self._state)

    def pause_queue(self, account_id: int) -> None:
        """Stop drainers (every process) from taking the letters waiting for this account, until :meth:`resume_queue`.

        Letters already being sent finish. ``account_id`` 0 pauses Flask-Mail's own route.
        """
        self._state.health.pause_queue(self._queue_key(account_id), True)

    def resume_queue(self, account_id: int) -> None:
        """Let drainers take the account's letters again."""
        self._state.health.pause_queue(self._queue_key(account_id), False)

    def cancel_queued(self, account_id: int | None = None, ids: t.Iterable[int] | None = None) -> int:
        """Cancel waiting letters: every one (no argument), an account's (0: Flask-Mail's route), or these ids.

        Returns how many. A cancelled letter is never sent; letters a
        drainer is sending are left alone.
        """

        key = None if account_id is None else self._queue_key(account_id)
        return outbox_status.cancel_queued(self._state, key, ids)

    @staticmethod
    def _queue_key(account_id: t.Any) -> int:
        key = parse_id(account_id)
        if key is None:
            raise LookupError(f"There is no SMTP account with id {account_id}.")
        return key

    def prune_messages(self) -> int:
        """Delete message log rows older than the retention setting; returns how many."""
        state = self._state
        return state.message_log.prune(state.directory.settings().message_retention_days)

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

    # --- admin pages ----------------------------------------------------------

    def init_admin(
        self, admin: t.Any, *, category: t.Any = None, views: t.Mapping[str, type[t.Any]] | None = None
    ) -> dict[str, t.Any]:
        """Add the admin pages to the site's flask-admin ``Admin``, under one menu category.

        ``smtp_accounts.init_admin(admin)`` adds SMTP accounts, Sending
        logs, Settings and Routing preview under "Mail through SMTP".
        Nobody may open them until :meth:`access_rule` says so.
        ``views={"accounts": MyAccountsView}`` mounts a site's subclass of a
        page instead (its flask-admin hooks, such as ``on_model_change``, run).
        """
        from .admin import mount

        return mount(self, admin, category=category, views=views)

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

    # --- keys -----------------------------------------------------------------

    def rotate_encryption_key(self) -> int:
        """Re-encrypt every stored password with the newest key; returns how many."""
        state = self._state
        session = state.db.session
        count = 0
        for account in session.query(self.Account).filter(self.Account.password_encrypted.isnot(None)):
            account.password_encrypted = state.vault.rotate(account.password_encrypted)
            count += 1
        for column in OAUTH_SECRETS.values():
            for account in session.query(self.Account).filter(getattr(self.Account, column).isnot(None)):
                setattr(account, column, state.vault.rotate(getattr(account, column)))
        session.commit()
        return count


def _warn_mail_argument(mail: t.Any) -> None:
    """``mail=`` did nothing: Flask-Mail is found on the app. Sites that pass it keep starting, warned."""
    if mail is not None:
        warnings.warn(
            "SMTPAccounts(mail=...) is not needed and is ignored: the extension finds Flask-Mail on the app."
            " Remove the argument: the next release refuses it.",
            DeprecationWarning,
            stacklevel=3,
        )


@contextlib.contextmanager
def _committed(session: t.Any) -> t.Iterator[None]:
    """Commit what the block wrote; roll it all back when the block raises."""
    try:
        yield
    except BaseException:
        session.rollback()
        raise
    session.commit()


def _defaults() -> dict[str, t.Any]:
    return {
        name: getattr(DEFAULT_SETTINGS, name)
        for name in SettingsInfo.__dataclass_fields__
        if name != "revision"
    }


def _account_defaults(fields: dict[str, t.Any]) -> dict[str, t.Any]:
    unknown = set(fields) - set(ACCOUNT_FIELDS) - {"id", "password_encrypted", "updated_at"}
    if unknown:
        raise UnknownFieldError(unknown)
    defaults = {
        "active": True,
        "sender_name": "",
        "port": 587,
        "security": "starttls",
        "auth": "login",
        "login": "",
        "verify_tls": True,
        "pipelining": True,
        "backup_ids": (),
        "limit_per_minute": 0,
        "limit_per_hour": 0,
        "limit_per_day": 0,
        "recipient_limit_per_day": 0,
        "over_limit": "wait",
        "max_connections": 0,
    }
    return {**defaults, **fields}
