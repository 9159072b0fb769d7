"""livemap's RESP packing sends exactly the bytes redis-py's own packing sends (the whole suite then
runs every command through it against a real Redis)."""

from __future__ import annotations

import pytest
from redis.asyncio.connection import Connection, UnixDomainSocketConnection
from redis.exceptions import DataError
from redis.typing import EncodableT

from livemap.storage.resp import fast_packing

COMMANDS: list[tuple[EncodableT, ...]] = [
    ("PING",),
    ("CONFIG GET", "maxmemory"),  # literal arguments in the command name
    (b"CLIENT SETNAME", b"x"),
    ("SET", "k", ""),
    ("SET", "ключ", "ünïcødé ✓"),
    ("ZADD", "z", 1.5, "a", -2, "b", 0, "c", 10**18, "d", 1e-7, "e"),
    ("SET", "big", b"x" * 1023),
    ("SET", "bigger", b"y" * 1024),
    ("SET", "huge", "z" * 70_000),  # past redis-py's 6 KB chunking cutoff
    ("SET", "view", memoryview(b"from a buffer")),
    ("SET", "array", bytearray(b"\x00\xff\r\n")),
    ("EVALSHA", "a" * 40, 2, "{o:1}", "{o:1}:e", *[str(i) for i in range(60)], b'{"json":true}'),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: str(c[0]))
def test_packs_the_same_bytes_as_redis_py(command: tuple[EncodableT, ...]) -> None:
    ours, theirs = fast_packing(Connection)(), Connection()
    assert b"".join(ours.pack_command(*command)) == b"".join(theirs.pack_command(*command))


def test_packs_a_pipeline_as_one_buffer() -> None:
    ours, theirs = fast_packing(Connection)(), Connection()
    packed = ours.pack_commands(COMMANDS)
    assert len(packed) == 1
    assert packed[0] == b"".join(theirs.pack_commands(COMMANDS))


def test_refuses_what_redis_py_refuses() -> None:
    with pytest.raises(DataError, match="bool"):
        fast_packing(Connection)().pack_command("SET", "k", True)
    with pytest.raises(DataError, match="NoneType"):
        fast_packing(Connection)().pack_command("SET", "k", None)  # type: ignore[arg-type]


def test_keeps_the_connection_kind() -> None:
    unix = fast_packing(UnixDomainSocketConnection)
    assert issubclass(unix, UnixDomainSocketConnection)
    assert fast_packing(UnixDomainSocketConnection) is unix


def test_keeps_a_connection_s_own_encoding() -> None:
    """A connection set to another encoding than UTF-8 packs its str arguments in that encoding."""
    command = ("SET", "clé", "été")
    ours, theirs = fast_packing(Connection)(encoding="latin-1"), Connection(encoding="latin-1")
    assert ours.pack_command(*command) == [b"".join(theirs.pack_command(*command))]
    assert b"cl\xe9" in ours.pack_command(*command)[0]
