"""Encryption of stored secrets (account passwords) with Fernet.

Keys come newest first; every key decrypts, the first one encrypts, so a
key can be rotated without losing access to what older keys wrote.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from .errors import EncryptionError

KEY_HINT = (
    "Set SMTP_ACCOUNTS_ENCRYPTION_KEYS (app config or environment) to a Fernet key;"
    ' make one with: python -c "from cryptography.fernet import Fernet;'
    ' print(Fernet.generate_key().decode())"'
)


class Vault:
    """Encrypts and decrypts secrets with the configured keys."""

    def __init__(self, keys: tuple[str, ...] | list[str]) -> None:
        if not keys:
            raise RuntimeError(f"flask-smtp-accounts has no encryption key. {KEY_HINT}")
        try:
            self._fernet = MultiFernet([Fernet(k) for k in keys])
        except (ValueError, TypeError) as err:
            raise RuntimeError(
                f"SMTP_ACCOUNTS_ENCRYPTION_KEYS holds a value that is not a Fernet key"
                f" (32 url-safe base64-encoded bytes). {KEY_HINT}"
            ) from err

    def encrypt(self, secret: str) -> str:
        """Encrypt ``secret`` with the newest key."""
        return self._fernet.encrypt(secret.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        """Decrypt a stored secret with whichever key wrote it."""
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except InvalidToken as err:
            raise EncryptionError(
                "A stored password cannot be decrypted with any configured key;"
                " was an old key removed from SMTP_ACCOUNTS_ENCRYPTION_KEYS?"
            ) from err

    def rotate(self, token: str) -> str:
        """Re-encrypt a stored secret with the newest key."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except InvalidToken as err:
            raise EncryptionError("A stored password cannot be decrypted with any configured key.") from err
