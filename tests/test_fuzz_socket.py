"""The driver socket under generated frames (hypothesis): every frame, valid or not, gets exactly one reply,
an ack or a documented typed error, and the socket stays open; nothing acknowledged is lost.

`make test` sends a few hundred frames; `make fuzz` sends LIVEMAP_FUZZ_FRAMES (100,000) and prints the count.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.sync.client import ClientConnection, connect

from conftest import ADMIN, RedisTarget, Server, now_ms, server_env

#: Frames sent: a quick sample in `make test`, 100,000 in `make fuzz`.
FRAMES = int(os.environ.get("LIVEMAP_FUZZ_FRAMES", "400"))
#: What a driver message may be answered with (README, "Driver socket"); `internal_error` is a defect.
ERROR_CODES = {"frame_too_large", "rate_limited", "invalid_json", "invalid_fix", "batch_too_large"}

#: Fix times are drawn around the moment the module loaded: a strategy must not read the clock.
_NOW = now_ms()
_numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    st.none(),
    st.text(max_size=8),
)
_json = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@st.composite
def _fix(draw: st.DrawFn) -> dict[str, Any]:
    """A fix that is plausible more often than not, with any field now and then out of range or of another type."""
    now = _NOW
    fix: dict[str, Any] = {
        "lat": draw(st.floats(-90, 90) | _numbers),
        "lon": draw(st.floats(-180, 180) | _numbers),
        "ts": draw(st.integers(now - 86_400_000, now + 60_000) | _numbers),
    }
    for name, valid in (
        ("speed", st.floats(0, 80)),
        ("heading", st.floats(0, 359.9)),
        ("accuracy", st.floats(0, 500)),
        ("battery", st.floats(0, 100)),
        ("seq", st.integers(0, 2**53)),
    ):
        if draw(st.booleans()):
            fix[name] = draw(valid | _numbers)
    if draw(st.integers(0, 9)) == 0:
        fix[draw(st.text(max_size=6))] = draw(_json)
    return fix


_frames = st.one_of(
    _fix().map(lambda f: json.dumps(f)),
    st.lists(_fix(), max_size=12).map(lambda fs: json.dumps(fs)),
    _json.map(lambda v: json.dumps(v)),
    st.text(max_size=200),
    st.binary(max_size=200),
)


@pytest.fixture(scope="module")
def fuzz_server(redis_target: RedisTarget, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # No rate limit in the way: the generator sends as fast as the replies come.
    env = server_env(redis_target, tmp_path_factory.mktemp("fz"), LIVEMAP_DRIVER_MSGS_PER_S="1000000")
    srv = Server(env, "fuzz")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def socket(fuzz_server: Server) -> Iterator[ClientConnection]:
    with httpx.Client(timeout=30) as http:
        store = http.post(
            fuzz_server.url + "/api/stores", json={"name": "Fuzz"}, headers={"Authorization": f"Bearer {ADMIN}"}
        )
        key = store.json()["api_key"]
        made = http.post(
            fuzz_server.url + "/api/drivers",
            json={"id": "fz", "name": "Fuzz"},
            headers={"Authorization": f"Bearer {key}"},
        )
        token = made.json()["token"]
    # No keepalive pings: their payload comes from `random`, which hypothesis watches while it draws frames.
    with connect(f"{fuzz_server.ws_url}/ws/driver?token={token}", max_size=2**22, ping_interval=None) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "stops"
        yield ws


@pytest.mark.timeout(120 + FRAMES // 50)  # about 300 frames a second on 2 cores
def test_every_generated_frame_gets_one_typed_reply(socket: ClientConnection) -> None:
    seen: Counter[str] = Counter()

    @settings(max_examples=FRAMES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(frame=_frames)
    def send(frame: str | bytes) -> None:
        socket.send(frame)
        reply = json.loads(socket.recv(timeout=10))
        if reply["type"] == "ack":
            # Every fix of the message is accounted for: stored, ignored (older than the newest) or rejected.
            sent = json.loads(frame)
            counted = reply["accepted"] + reply["ignored"] + len(reply.get("rejected", []))
            assert counted == (len(sent) if isinstance(sent, list) else 1), (frame, reply)
            seen["ack"] += 1
            seen["fixes accepted"] += reply["accepted"]
        else:
            assert reply["type"] == "error" and reply["code"] in ERROR_CODES, (frame, reply)
            assert reply["message"], reply
            seen[f"error {reply['code']}"] += 1

    send()
    total = sum(v for k, v in seen.items() if k == "ack" or k.startswith("error"))
    print(f"\nsocket fuzz: {total:,} frames, {total:,} replies: {dict(sorted(seen.items()))}")
    assert total >= FRAMES * 0.9  # hypothesis may stop short of max_examples when the space is exhausted; it is not
    socket.send(json.dumps({"lat": 1.0, "lon": 1.0, "ts": now_ms(), "seq": 7}))
    assert json.loads(socket.recv(timeout=10))["type"] == "ack", "the socket still works after all that"
