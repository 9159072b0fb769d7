"""Faster RESP packing for redis-py's connections: the hot path's commands carry ~50 arguments.

redis-py's asyncio connections pack a command in Python, re-joining one growing buffer per argument
(quadratic in the command's size up to its 6 KB cutoff) and running every argument through a
generic encoder. A driver's fix is one EVALSHA of the script bundle with ~50 arguments, and packing
it that way costs more CPU than anything else livemap does per fix. Here hiredis packs it, in C
(the Python packer below takes what hiredis refuses). Same wire format, same argument rules: bytes
as they are, str as UTF-8 (or the connection's encoding), int and float by repr, and anything else
(bytearray, bool) through redis-py's own encoder, which accepts or refuses it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import hiredis
from redis.asyncio.connection import AbstractConnection
from redis.typing import EncodableT

#: Argument-length headers ("$<n>\r\n") of the lengths most arguments have, made once.
_HEADS = [b"$%d\r\n" % n for n in range(1024)]
_CRLF = b"\r\n"


class _FastPacking(AbstractConnection):
    """Mixed in before a redis-py connection class: replaces its `pack_command(s)` only."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # str arguments are encoded with str.encode() when the connection's encoding is UTF-8.
        self._utf8 = self.encoder.encoding.lower().replace("-", "") == "utf8"

    def pack_command(self, *args: EncodableT) -> list[bytes]:
        first = args[0]
        # A command name may carry literal arguments ("CONFIG GET"): Redis expects them separately.
        if isinstance(first, str) and " " in first:
            args = (*first.encode().split(), *args[1:])
        elif isinstance(first, bytes) and b" " in first:
            args = (*first.split(), *args[1:])
        utf8 = self._utf8
        if utf8:
            try:
                return [hiredis.pack_command(args)]  # type: ignore[arg-type]  # stub: a 1-tuple, not tuple[..., ...]
            except TypeError:  # an argument hiredis does not take (bytearray, bool): packed or refused below
                pass
        encode = self.encoder.encode
        out: list[bytes | bytearray | memoryview] = [b"*%d\r\n" % len(args)]
        add = out.append
        for arg in args:
            data: bytes | bytearray | memoryview
            if type(arg) is bytes:
                data = arg
            elif type(arg) is str and utf8:
                data = arg.encode()
            elif type(arg) is int:  # not bool: the encoder refuses those, as redis-py does
                data = b"%d" % arg
            else:
                data = encode(arg)  # type: ignore[no-untyped-call]  # redis-py's Encoder is unannotated
            size = len(data)
            add(_HEADS[size] if size < 1024 else b"$%d\r\n" % size)
            add(data)
            add(_CRLF)
        return [b"".join(out)]

    def pack_commands(self, commands: Iterable[Iterable[EncodableT]]) -> list[bytes]:
        return [b"".join(chunk for command in commands for chunk in self.pack_command(*command))]


_classes: dict[type[AbstractConnection], type[AbstractConnection]] = {}


def fast_packing(cls: type[AbstractConnection]) -> type[AbstractConnection]:
    """`cls` (a TCP, TLS or Unix socket connection class) with the faster packing."""
    if cls not in _classes:
        _classes[cls] = type(f"FastPacking{cls.__name__}", (_FastPacking, cls), {})
    return _classes[cls]
