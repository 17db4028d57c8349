"""The API of the settings and the accounts: declared fields in, frozen infos or rows out, every change validated."""

from __future__ import annotations

import contextlib
import functools
import typing as t

import sqlalchemy as sa

from .. import flask_mail_hook
from ..account_fields import ACCOUNT_INFO_FIELDS, OAUTH_SECRETS, SETTABLE_FIELDS, AccountInfo, secrets_held
from ..addresses import normalize_email
from ..check import CheckResult, run_check
from ..errors import (
    AccountCheckFailed,
    AccountInUseError,
    AccountNotFoundError,
    InvalidAccountError,
    InvalidAddressError,
    UnknownFieldError,
)
from ..failover import check_backups
from ..ids import parse_id
from ..models import SETTINGS_ID, settings_info
from ..routing import Choice, bulk_sending, choose_route, split_sender
from ..settings import SettingsInfo
from ..validation import (
    SMTP_DESTINATION,
    TOKEN_DESTINATION,
    secrets_given_again,
    validate_account,
    validate_settings,
)
from .base import APIBase

#: Every account field the API takes: the settable ones and the write-only OAuth2 secrets (an empty
#: secret keeps the stored one, like the password).
ACCOUNT_FIELDS: tuple[str, ...] = SETTABLE_FIELDS + tuple(OAUTH_SECRETS)


#: Called with an account's row inside the transaction that saves or deletes it (flask-admin's
#: ``on_model_change``/``on_model_delete`` hooks run there).
BeforeCommit = t.Callable[[t.Any], None]


class AccountsAPI(APIBase):
    """The settings, the accounts and their checks, the keys, and the routing preview."""

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
            row = self.Settings(id=SETTINGS_ID, **clean)
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

    def get_account(self, account_id: int) -> AccountInfo:
        """The account with this id, a frozen :class:`AccountInfo` read fresh.

        :class:`AccountNotFoundError` (a ``LookupError``) when there is none.
        """
        key = parse_id(account_id)
        found = self._state.directory.accounts([key]) if key is not None else ()
        if not found:
            raise AccountNotFoundError(account_id)
        return found[0]

    def _row(self, account_id: t.Any) -> t.Any:
        """The account's row in the site's session, for a change or a delete."""
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
    ) -> AccountInfo:
        """Create an account, after checking it against its server; returns it (a frozen :class:`AccountInfo`).

        ``fields`` are the account's columns (``sender_email``, ``host``,
        ``port``, ``security``, ``auth``, ``login``...). With ``check`` on, a
        failed check raises :class:`AccountCheckFailed` and nothing is saved.
        ``before_commit(row)`` runs once the account is valid and checked, in
        the transaction that saves it: what it raises leaves nothing written.
        """
        _refuse_unknown(fields)
        account = self.Account(**fields)
        return self._save(account, password, check, is_new=True, before_commit=before_commit)

    def update_account(
        self,
        account_id: int,
        *,
        password: str | None = None,
        check: bool = True,
        before_commit: BeforeCommit | None = None,
        **fields: t.Any,
    ) -> AccountInfo:
        """Change an account; an empty ``password`` keeps the stored one. Returns it, as :meth:`add_account` does.

        A change of where a stored secret goes (server, port, security,
        login, OAuth2 endpoints) needs that secret again: else
        :class:`InvalidAccountError` on its field, and nothing is sent anywhere.
        ``before_commit`` as in :meth:`add_account`.
        """
        account = self._row(account_id)
        _refuse_unknown(fields)
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
        account = self._row(account_id)
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
    ) -> AccountInfo:
        """Validate, check and commit ``account``; the saved account as a frozen :class:`AccountInfo`.

        The info is read from the row once flushed, inside the saving
        transaction: reading it after the commit would begin another
        transaction in the site's session and leave it open (on MySQL's
        REPEATABLE READ, a snapshot older than the next change made elsewhere).
        """
        info = self.account_info(account, password)
        if is_new:  # the defaults of the fields left out, for before_commit (flask-admin's hooks) to see
            for name in SETTABLE_FIELDS:
                setattr(account, name, getattr(info, name))
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
            session.flush()
            saved: AccountInfo = account.to_info()
        return saved

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

        A field left out, or ``None``, is its default. A mapping's plain
        OAuth2 secrets are carried encrypted, like stored ones, so that an
        account not saved yet can be checked with them. Raises
        :class:`InvalidAccountError` naming the first bad field.
        """
        if isinstance(account, t.Mapping):
            values = self._stored_form(account)
        else:
            values = {name: getattr(account, name) for name in ACCOUNT_INFO_FIELDS}
        values = {name: value for name, value in values.items() if value is not None}
        given = {"password"} if password else set()
        clean = validate_account({**values, **secrets_held(values, given)})
        return AccountInfo(**{**values, **clean})

    def _stored_form(self, fields: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
        """An account's fields as a mapping gives them, with its plain OAuth2 secrets encrypted as stored."""
        _refuse_unknown(fields, also=("id", "password_encrypted", "updated_at"))
        values = {name: value for name, value in fields.items() if name not in OAUTH_SECRETS}
        for secret, column in OAUTH_SECRETS.items():
            if fields.get(secret):
                values[column] = self._state.vault.encrypt(fields[secret])
        return values

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

    # --- keys -----------------------------------------------------------------

    def rotate_encryption_key(self) -> int:
        """Re-encrypt every stored password with the newest key; returns how many."""
        state = self._state
        session = state.db.session
        count = 0
        for account in session.query(self.Account).filter(self.Account.password_encrypted.isnot(None)):
            # Never None: the query takes only the rows that hold a ciphertext.
            account.password_encrypted = state.vault.rotate(t.cast(str, account.password_encrypted))
            count += 1
        for column in OAUTH_SECRETS.values():
            for account in session.query(self.Account).filter(getattr(self.Account, column).isnot(None)):
                setattr(account, column, state.vault.rotate(getattr(account, column)))
        session.commit()
        return count


@contextlib.contextmanager
def _committed(session: t.Any) -> t.Iterator[None]:
    """Commit what the block wrote; roll it all back when the block raises."""
    try:
        yield
    except BaseException:
        session.rollback()
        raise
    session.commit()


def _refuse_unknown(fields: t.Mapping[str, t.Any], also: t.Iterable[str] = ()) -> None:
    """:class:`UnknownFieldError` naming the fields no account has."""
    unknown = set(fields) - set(ACCOUNT_FIELDS) - set(also)
    if unknown:
        raise UnknownFieldError(unknown)
