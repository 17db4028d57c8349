"""The access tokens of one app's OAuth2 accounts, kept in memory and renewed shortly before they expire.

Access tokens never reach the database or a log. When a provider rotates
a refresh token, the new one is handed to the writer the app gives
(``store_refresh_token``), which saves it encrypted on the account.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import typing as t
import urllib.parse
from dataclasses import dataclass, field

from .providers import PROVIDERS, OAuth2Account, Providers, scope_of, token_url_of
from .tokens import Token, fetch_token, grant_of

if t.TYPE_CHECKING:
    from ..crypto import Vault

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AccessToken:
    """An access token handed to one connection. Holds a secret: never log it."""

    value: str = field(repr=False)
    expires_at: float
    #: Fetched for this request (``False``: from the cache).
    fresh: bool


@dataclass
class _Entry:
    value: str = field(repr=False)
    expires_at: float
    lifetime: float
    #: The stored refresh tokens this access token belongs to (before and after a rotation).
    refresh_tokens: frozenset[str] = field(default_factory=frozenset, repr=False)


class AccessTokens:
    """Access tokens of one app's OAuth2 accounts, in memory, renewed shortly before they expire.

    Thread-safe: concurrent connections of one account wait for one fetch.
    An account not saved yet (id 0: a check before saving) is never cached,
    so that its check really asks the endpoint.

    A provider may rotate the refresh token on use and void the old one.
    The new one is saved with ``store_refresh_token(account_id,
    ciphertext)``; it is also remembered here (by a hash of the old one), so
    that a failed save is retried on the next fetch and a check before
    saving can hand the new token to the save (:meth:`latest_refresh_token`).
    """

    #: Renew this many seconds before expiry (at most a tenth of the token's lifetime).
    margin_s = 300.0
    #: Rotations remembered at most.
    max_rotations = 1000

    def __init__(
        self,
        vault: Vault,
        store_refresh_token: t.Callable[[int, str], None],
        *,
        providers: Providers = PROVIDERS,
        clock: t.Callable[[], float] = time.time,
    ) -> None:
        self._vault = vault
        self._store = store_refresh_token
        self.providers = providers
        self.clock = clock
        self._lock = threading.Lock()
        self._entries: dict[tuple[t.Any, ...], _Entry] = {}
        self._fetching: dict[tuple[t.Any, ...], threading.Lock] = {}
        self._rotations: dict[str, str] = {}
        #: How many times a token endpoint was asked (for tests and benchmarks).
        self.fetches = 0

    def _key(self, account: OAuth2Account) -> tuple[t.Any, ...]:
        return (
            account.id,
            account.oauth_provider,
            account.oauth_flow,
            token_url_of(account, self.providers),
            account.oauth_client_id,
            scope_of(account, self.providers),
            account.oauth_client_secret_encrypted,
        )

    def _stored_refresh_token(self, account: OAuth2Account) -> str | None:
        if account.oauth_flow != "delegated" or not account.oauth_refresh_token_encrypted:
            return None
        return self._vault.decrypt(account.oauth_refresh_token_encrypted)

    def get(
        self, account: OAuth2Account, *, timeout: float, renew: bool = False, transcript: t.Any = None
    ) -> AccessToken:
        """A valid access token for ``account``; raises :class:`OAuth2Error`."""
        stored = self._stored_refresh_token(account)
        if not account.id:
            token = self._fetch(account, self.latest_refresh_token(stored), timeout)
            self._report(transcript, account, token.expires_in, fresh=True)
            return AccessToken(token.access_token, self.clock() + token.expires_in, fresh=True)
        key = self._key(account)
        if not renew:
            cached = self._valid(key, stored)
            if cached is not None:
                self._report(transcript, account, cached.expires_at - self.clock(), fresh=False)
                return AccessToken(cached.value, cached.expires_at, fresh=False)
        with self._lock:
            fetching = self._fetching.setdefault(key, threading.Lock())
        with fetching:
            if not renew:
                cached = self._valid(key, stored)
                if cached is not None:  # another thread fetched it meanwhile
                    return AccessToken(cached.value, cached.expires_at, fresh=False)
            refresh_token = self.latest_refresh_token(stored)
            if refresh_token != stored:  # rotated earlier, but saving it failed: try again
                self._save_rotated(account.id, refresh_token)
            token = self._fetch(account, refresh_token, timeout)
            known = frozenset(rt for rt in (stored, refresh_token, token.refresh_token) if rt)
            entry = _Entry(token.access_token, self.clock() + token.expires_in, token.expires_in, known)
            with self._lock:
                self._entries[key] = entry
        self._report(transcript, account, token.expires_in, fresh=True)
        return AccessToken(entry.value, entry.expires_at, fresh=True)

    def latest_refresh_token(self, refresh_token: str | None) -> str | None:
        """``refresh_token``, or the one the provider rotated it to (followed to the newest)."""
        with self._lock:
            for _ in range(len(self._rotations) + 1):
                if refresh_token is None:
                    break
                newer = self._rotations.get(_digest(refresh_token))
                if newer is None:
                    break
                refresh_token = newer
        return refresh_token

    def forget(self, account: OAuth2Account | int | None = None) -> None:
        """Drop the cached token of one account (an ``OAuth2Account`` or an id), or of all."""
        account_id = account if isinstance(account, int) or account is None else account.id
        with self._lock:
            if account_id is None:
                self._entries.clear()
            else:
                for key in [k for k in self._entries if k[0] == account_id]:
                    del self._entries[key]

    def _valid(self, key: tuple[t.Any, ...], stored: str | None) -> _Entry | None:
        with self._lock:
            entry = self._entries.get(key)
        if entry is None:
            return None
        if stored is not None and stored not in entry.refresh_tokens:
            return None  # someone signed in again: the token may belong to another mailbox
        margin = min(self.margin_s, entry.lifetime / 10)
        if self.clock() >= entry.expires_at - margin:
            return None
        return entry

    def _fetch(self, account: OAuth2Account, refresh_token: str | None, timeout: float) -> Token:
        grant = grant_of(account, self._vault, refresh_token, self.providers)
        with self._lock:
            self.fetches += 1
        token = fetch_token(grant, timeout=timeout, account_id=account.id or None)
        if token.refresh_token and refresh_token and token.refresh_token != refresh_token:
            with self._lock:
                if len(self._rotations) >= self.max_rotations:
                    self._rotations.pop(next(iter(self._rotations)))
                self._rotations[_digest(refresh_token)] = token.refresh_token
            if account.id:
                self._save_rotated(account.id, token.refresh_token)
        return token

    def _save_rotated(self, account_id: int, refresh_token: str | None) -> None:
        if not refresh_token:
            return
        try:
            self._store(account_id, self._vault.encrypt(refresh_token))
        except Exception as err:  # noqa: BLE001 - the token stays in memory; the next fetch saves it again
            # Only the class: a database error's text may quote the statement's parameters.
            logger.warning(
                "The rotated OAuth2 refresh token of SMTP account %s could not be stored (%s);"
                " it is kept in memory and stored on the next token fetch.",
                account_id,
                type(err).__name__,
            )

    def _report(self, transcript: t.Any, account: OAuth2Account, valid_for: float, *, fresh: bool) -> None:
        if transcript is None:
            return
        host = urllib.parse.urlsplit(token_url_of(account, self.providers)).hostname
        how = f"fetched from {host}" if fresh else "cached"
        transcript.event(f"OAuth2 access token {how}, valid for {max(valid_for, 0):.0f} s more")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()
