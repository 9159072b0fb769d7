"""Dispatcher accounts: a name and password per person, so dispatchers never need the store's key.

The store creates and removes them with its key (`/api/dispatchers`, see `dispatchers`). Passwords
are kept only as scrypt hashes; each account also has a *version* (a digest of its hash), which
its sessions record: removing the account, or creating it again with a new password, ends them.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import os

import msgspec

from livemap.domain.clock import now_ms
from livemap.domain.records import Conflict, NotFound, decode_hash
from livemap.domain.responses import Dispatcher
from livemap.storage.repository import Repository

# scrypt cost: 16 MiB and a few tens of milliseconds per check, run off the event loop.
_N, _R, _P = 2**14, 8, 1


class _Account(msgspec.Struct):
    password: str  # "scrypt$n$r$p$salt$hash", base64 parts
    created: int


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def check_password(password: str, stored: str) -> bool:
    """Constant-time check of `password` against a `hash_password` result."""
    _, n, r, p, salt, digest = stored.split("$")
    expected = base64.b64decode(digest)
    got = hashlib.scrypt(
        password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
    )
    return hmac.compare_digest(got, expected)


@functools.cache
def _dummy() -> str:
    """Checked against when the name is unknown, so a wrong name takes as long as a wrong password."""
    return hash_password(os.urandom(16).hex())


def version(account: _Account) -> str:
    """What a session remembers of its account: changes when the account is removed or re-created."""
    return hashlib.sha256(account.password.encode()).hexdigest()[:32]


async def _account(store: Repository, sid: str, name: str) -> _Account | None:
    raw = await store.redis.hget(store.keys.store_dispatchers(sid), name)
    return msgspec.json.decode(raw, type=_Account) if raw else None


async def current_version(store: Repository, sid: str, name: str) -> str | None:
    """The account's version, or None once it is gone."""
    account = await _account(store, sid, name)
    return version(account) if account else None


async def verify(store: Repository, sid: str, name: str, password: str) -> str | None:
    """The account's version when `password` is its password; None for a wrong name or password."""
    account = await _account(store, sid, name) if sid and name else None
    stored = account.password if account else None
    ok = await asyncio.to_thread(lambda: check_password(password, stored or _dummy()))
    return version(account) if ok and account else None


async def create(store: Repository, sid: str, name: str, password: str) -> Dispatcher:
    """A new account of store `sid`; raises Conflict when the name is taken."""
    hashed = await asyncio.to_thread(hash_password, password)
    account = _Account(hashed, now_ms())
    if not await store.redis.hsetnx(store.keys.store_dispatchers(sid), name, msgspec.json.encode(account)):
        raise Conflict(f"dispatcher {name} already exists")
    return Dispatcher(name, account.created)


async def all_of(store: Repository, sid: str) -> list[Dispatcher]:
    raw = decode_hash(await store.redis.hgetall(store.keys.store_dispatchers(sid)))
    return [Dispatcher(name, msgspec.json.decode(v, type=_Account).created) for name, v in sorted(raw.items())]


async def remove(store: Repository, sid: str, name: str) -> Dispatcher:
    """Remove the account (returned as it was); its sessions end at their next request. Raises NotFound."""
    key = store.keys.store_dispatchers(sid)
    async with store.redis.pipeline(transaction=True) as pipe:
        pipe.hget(key, name)
        pipe.hdel(key, name)
        raw, _ = await pipe.execute()
    if raw is None:
        raise NotFound(f"dispatcher {name} not found")
    return Dispatcher(name, msgspec.json.decode(raw, type=_Account).created)
