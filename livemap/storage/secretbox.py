"""Secrets livemap must give back later (a store's webhook, SMTP and shop secrets; a customer's tracking
token, which goes into every link) are stored sealed, not in plain text.

A Redis dump, a replica or a backup then holds no usable secret without the key, which lives in the
environment (`LIVEMAP_SECRET_KEY`), never in Redis. Sealing is Fernet (AES-128-CBC with an
HMAC-SHA256, from the `cryptography` package): authenticated, so a tampered value fails to open
instead of opening to garbage. Several comma-separated keys rotate: the first seals, any opens.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

log = logging.getLogger("livemap.secrets")

#: Marks a sealed value; values without it were stored before sealing existed and are read as they are.
_PREFIX = "sealed:"


class SecretUnavailable(Exception):
    """A sealed value that none of the configured keys opens (the key changed, or the value was altered)."""


class SecretBox:
    """Seals and opens stored secrets with the keys from LIVEMAP_SECRET_KEY."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys or not all(keys):
            raise ValueError("at least one non-empty secret key is needed")
        # Any text works as a key: SHA-256 turns it into Fernet's 32 bytes (a generated key has 256 bits).
        derived = [hashlib.sha256(k.encode()).digest() for k in keys]
        self._fernet = MultiFernet([Fernet(base64.urlsafe_b64encode(key)) for key in derived])
        # Signing gets keys of its own (never the sealing keys themselves), derived from the same secrets.
        self._signing = [hmac.new(key, b"livemap signing", hashlib.sha256).digest() for key in derived]

    def seal(self, plain: str) -> str:
        return _PREFIX + self._fernet.encrypt(plain.encode()).decode()

    def open(self, stored: str) -> str:
        """The plain secret; a value stored before sealing existed comes back as it is."""
        if not stored.startswith(_PREFIX):
            return stored
        try:
            return self._fernet.decrypt(stored.removeprefix(_PREFIX).encode()).decode()
        except InvalidToken:
            raise SecretUnavailable("a stored secret does not open with LIVEMAP_SECRET_KEY") from None

    def sign(self, message: str) -> str:
        """A signature of `message`, for links livemap hands out that must not be forgeable (unsubscribe)."""
        return self._mac(self._signing[0], message)

    def verify(self, message: str, signature: str) -> bool:
        """Whether `signature` is `sign(message)` under any configured key (rotation keeps old links working)."""
        return any(hmac.compare_digest(self._mac(key, message), signature) for key in self._signing)

    @staticmethod
    def _mac(key: bytes, message: str) -> str:
        return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()[:32]  # 128 bits keep links short

    @classmethod
    def from_settings(cls, secret_key: str, data_dir: Path, shared_redis: bool) -> SecretBox:
        """The configured keys, else one generated into the data dir on first start (the embedded default).

        Every process that shares a Redis must seal with the same key: with an external Redis the
        generated one is only right for processes that also share this data dir, so say so.
        """
        if secret_key:
            return cls([k.strip() for k in secret_key.split(",") if k.strip()])
        path = data_dir / "secret_key"
        if not path.exists():
            # Written aside, then linked into place: a process starting at the same moment (the worker
            # beside the server) either finds no file or a whole one, and both end up with the same key.
            path.parent.mkdir(parents=True, exist_ok=True)
            draft = path.with_name(f".secret_key.{os.getpid()}")
            fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(32) + "\n")
            with contextlib.suppress(FileExistsError):
                os.link(draft, path)
            draft.unlink()
        if shared_redis:
            log.warning(
                "LIVEMAP_SECRET_KEY is not set: using the key generated in %s; every process on this Redis "
                "must use the same one (set LIVEMAP_SECRET_KEY to its contents)",
                path,
            )
        return cls([path.read_text().strip()])
