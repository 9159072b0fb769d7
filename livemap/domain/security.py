"""Secrets: generation, storage form and comparison.

Tokens are stored only as SHA-256 digests. Looking a credential up by its digest leaks at most
timing about the digest, never about the token; digests that are compared directly are compared
with `hmac.compare_digest`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

# 32 random bytes = 256 bits; the customer tracking token needs >= 128 (DESIGN.md).
_TOKEN_BYTES = 32


def new_token(kind: str) -> str:
    """An unguessable token with a readable kind prefix (`lmk_` store key, `lmd_` driver, ...)."""
    return f"{kind}_{secrets.token_urlsafe(_TOKEN_BYTES)}"


def new_tracking_token() -> str:
    """The customer's `t` (192 bits, short enough for an SMS link)."""
    return secrets.token_urlsafe(24)


def new_id(prefix: str = "", nbytes: int = 12) -> str:
    """A random public identifier (tracking ids, store ids): unguessable, URL-safe."""
    return prefix + secrets.token_urlsafe(nbytes)


def digest(token: str) -> str:
    """Storage form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def matches(token: str, stored_digest: str) -> bool:
    """Constant-time check of `token` against a stored digest."""
    return hmac.compare_digest(digest(token), stored_digest)


def same_secret(given: str, expected: str) -> bool:
    """Constant-time equality of two secrets (admin token); an empty expected secret never matches."""
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())
