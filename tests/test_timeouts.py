"""Slow and silent clients are cut off on time; websockets are not; SIGTERM ends within its deadline.

Every test talks to a real `livemap serve` over real sockets, with timeouts of a second or two
(LIVEMAP_HEADER_TIMEOUT_S, LIVEMAP_BODY_TIMEOUT_S, LIVEMAP_SHUTDOWN_TIMEOUT_S) so the suite stays quick.
Each prints what it measured (`pytest -s` shows it).
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import websockets

from conftest import ADMIN, RedisTarget, Server, customer_socket, new_shop, server_env, wait

HEADER_S = 1.5
BODY_S = 1.5
KEEP_ALIVE_S = 3
SHUTDOWN_S = 2
#: How late past a deadline the server may act: the timers are exact, the machine is shared.
LATE = wait(1.5)

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@pytest.fixture(scope="module")
def timed(redis_target: RedisTarget, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = server_env(
        redis_target,
        tmp_path_factory.mktemp("timeouts"),
        LIVEMAP_HEADER_TIMEOUT_S=str(HEADER_S),
        LIVEMAP_BODY_TIMEOUT_S=str(BODY_S),
        LIVEMAP_KEEP_ALIVE_TIMEOUT_S=str(KEEP_ALIVE_S),
    )
    srv = Server(env, "T")
    yield srv
    srv.stop()


async def _open(server: Server) -> Stream:
    url = urlsplit(server.url)
    assert url.hostname is not None and url.port is not None
    return await asyncio.open_connection(url.hostname, url.port)


async def _until_closed(reader: asyncio.StreamReader, started: float, limit: float) -> tuple[float, bytes]:
    """Seconds from `started` until the server closed the connection, and all it sent before."""
    received = b""
    try:
        async with asyncio.timeout(limit - (time.monotonic() - started)):
            while chunk := await reader.read(65536):
                received += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        raise AssertionError(f"still open {limit:.1f} s after it started; received {received[:80]!r}") from None
    return time.monotonic() - started, received


async def _dribble(writer: asyncio.StreamWriter, data: bytes, every: float) -> None:
    """Send `data` one byte every `every` seconds until the server closes the connection."""
    with contextlib.suppress(ConnectionError):
        for i in range(len(data)):
            writer.write(data[i : i + 1])
            await writer.drain()
            await asyncio.sleep(every)


async def _healthz(http: httpx.AsyncClient, server: Server) -> int:
    try:
        return (await http.get(server.url + "/healthz", timeout=1)).status_code
    except httpx.HTTPError:
        return 0


async def _request(stream: Stream, path: str = "/healthz") -> bytes:
    """One GET on a kept-alive connection: the response's head."""
    reader, writer = stream
    writer.write(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), wait(5))
    lines = head.lower().split(b"\r\n")
    await reader.readexactly(next(int(line.split(b":")[1]) for line in lines if line.startswith(b"content-length")))
    return head


@contextlib.asynccontextmanager
async def _closing(streams: list[Stream]) -> AsyncIterator[None]:
    try:
        yield
    finally:
        for _, writer in streams:
            writer.close()


async def test_idle_connections_are_closed_after_the_header_timeout(timed: Server) -> None:
    """A connection that sends nothing is closed, without an answer, once the header timeout passes."""
    started = time.monotonic()
    streams = [await _open(timed) for _ in range(5)]
    async with _closing(streams):
        results = await asyncio.gather(*(_until_closed(r, started, HEADER_S + LATE) for r, _ in streams))
    times = [elapsed for elapsed, _ in results]
    print(f"\nidle connections closed after {min(times):.2f}-{max(times):.2f} s (header timeout {HEADER_S} s)")
    assert all(HEADER_S - 0.1 <= t <= HEADER_S + LATE for t in times), times
    assert all(sent == b"" for _, sent in results)  # nothing was asked: nothing is answered


async def test_slowloris_headers_get_408_at_the_header_timeout(timed: Server) -> None:
    """Headers sent a byte every 0.5 s are cut at the header timeout with a 408, on a new connection and on a
    kept-alive one (timed from the next request's first byte, however often bytes arrive); blank lines
    dribbled between requests (no request begun) are cut as well, without an answer."""
    endless = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 1000
    kept, blank = await _open(timed), await _open(timed)
    async with _closing([kept, blank]):
        for stream in (kept, blank):
            assert (await _request(stream)).startswith(b"HTTP/1.1 200 ")
        started = time.monotonic()
        fresh = await _open(timed)
        dribblers = [
            asyncio.create_task(_dribble(fresh[1], endless, 0.5)),
            asyncio.create_task(_dribble(kept[1], endless, 0.5)),
            asyncio.create_task(_dribble(blank[1], b"\r\n" * 1000, 0.5)),
        ]
        try:
            results = await asyncio.gather(
                *(_until_closed(r, started, HEADER_S + LATE) for r, _ in (fresh, kept, blank))
            )
        finally:
            for task in dribblers:
                task.cancel()
            fresh[1].close()
    (new_s, new_sent), (kept_s, kept_sent), (blank_s, blank_sent) = results
    print(f"\nslowloris closed after {new_s:.2f} s (new connection), {kept_s:.2f} s (kept-alive), ", end="")
    print(f"{blank_s:.2f} s (blank lines on a kept-alive one)")
    for elapsed, _ in results:
        assert HEADER_S - 0.1 <= elapsed <= HEADER_S + LATE
    assert new_sent.startswith(b"HTTP/1.1 408 ") and kept_sent.startswith(b"HTTP/1.1 408 "), (new_sent, kept_sent)
    assert blank_sent == b""


async def test_an_idle_kept_alive_connection_lasts_the_keep_alive_timeout(timed: Server) -> None:
    """After a whole request, an idle connection is closed by the keep-alive timeout, not the shorter header one."""
    stream = await _open(timed)
    async with _closing([stream]):
        await _request(stream)
        started = time.monotonic()
        elapsed, sent = await _until_closed(stream[0], started, KEEP_ALIVE_S + LATE)
    print(f"\nidle kept-alive connection closed after {elapsed:.2f} s (keep-alive timeout {KEEP_ALIVE_S} s)")
    assert KEEP_ALIVE_S - 0.1 <= elapsed <= KEEP_ALIVE_S + LATE
    assert sent == b""


async def test_slow_body_gets_408_at_the_body_timeout_and_others_are_served(
    timed: Server, http: httpx.AsyncClient
) -> None:
    """A body sent at 1 byte/s is cut at the body timeout with a 408 while /healthz keeps answering, and the
    endpoint reading it sees the disconnect (no 'internal error' in the log)."""
    reader, writer = await _open(timed)
    async with _closing([(reader, writer)]):
        writer.write(
            b"POST /api/stores HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + ADMIN.encode() + b"\r\nContent-Length: 100\r\n\r\n"
        )
        await writer.drain()
        started = time.monotonic()
        dribbler = asyncio.create_task(_dribble(writer, b'{"name": "' + b"x" * 88 + b'"}', 1.0))
        closed = asyncio.create_task(_until_closed(reader, started, BODY_S + LATE))
        statuses = []
        while not closed.done():
            statuses.append(await _healthz(http, timed))
            await asyncio.sleep(0.2)
        dribbler.cancel()
        elapsed, sent = await closed
    print(f"\nslow body closed after {elapsed:.2f} s (body timeout {BODY_S} s); /healthz meanwhile: {statuses}")
    assert BODY_S - 0.1 <= elapsed <= BODY_S + LATE
    assert sent.startswith(b"HTTP/1.1 408 "), sent
    assert statuses and set(statuses) == {200}
    await asyncio.sleep(0.3)  # the endpoint's task unwinds after the close
    assert not any("internal error" in line for line in timed.output), "".join(timed.output[-20:])


async def test_an_idle_websocket_outlives_the_header_timeout(timed: Server, http: httpx.AsyncClient) -> None:
    """A customer's socket idle past the header timeout stays open; a TCP connection idle as long is closed."""
    shop = await new_shop(http, timed)
    order = await shop.order("ws-idle")
    sock = await customer_socket(timed, order)
    started = time.monotonic()
    reader, writer = await _open(timed)
    async with _closing([(reader, writer)]):
        await _until_closed(reader, started, HEADER_S + LATE)
        await asyncio.sleep(HEADER_S)  # well past the timeout for the socket too
        assert sock.conn.state is websockets.State.OPEN
        pong = await sock.conn.ping()
        await asyncio.wait_for(pong, wait(5))
    await sock.close()


def _files_limit(n: int) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))


async def test_a_full_file_table_frees_itself_after_the_header_timeout(
    redis_target: RedisTarget, tmp_path: Path
) -> None:
    """With 256 files, 300 idle connections do not keep /healthz failing: they are closed at the header timeout."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1024:
        pytest.skip(f"this test opens 300+ sockets; the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024 if hard == resource.RLIM_INFINITY else min(hard, 4096), hard))
    env = server_env(redis_target, tmp_path, LIVEMAP_HEADER_TIMEOUT_S=str(HEADER_S))
    srv = Server(env, "F", preexec_fn=lambda: _files_limit(256))
    streams: list[Stream] = []
    try:
        # No keep-alive: each probe needs a file of its own, as a new client's would.
        async with httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=0)) as http, _closing(streams):
            assert await _healthz(http, srv) == 200
            started = time.monotonic()
            for _ in range(300):
                streams.append(await _open(srv))
            during = await _healthz(http, srv)
            # Past the fd limit the server accepts and at once closes what it cannot hold (libuv), the rest
            # wait for the header timeout: all are gone by then.
            results = await asyncio.gather(*(_until_closed(r, started, HEADER_S + LATE) for r, _ in streams))
            statuses = [await _healthz(http, srv)]
            while statuses[-1] != 200 and time.monotonic() - started < HEADER_S + 2 * LATE:
                await asyncio.sleep(0.1)
                statuses.append(await _healthz(http, srv))
            elapsed = time.monotonic() - started
    finally:
        srv.stop()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    held = sorted(t for t, _ in results if t >= HEADER_S - 0.1)
    print(
        f"\n256 files, 300 idle connections: {len(results) - len(held)} closed at once, {len(held)} held until"
        f" {held[-1] if held else 0:.2f} s; /healthz while full: {during or 'failed'}, then 200 at {elapsed:.2f} s"
    )
    assert statuses[-1] == 200, statuses
    assert any("open files" in line and "256" in line for line in srv.output), "".join(srv.output[:20])


async def test_sigterm_with_a_slow_upload_ends_within_the_shutdown_deadline(
    redis_target: RedisTarget, tmp_path: Path, http: httpx.AsyncClient
) -> None:
    """SIGTERM while a body arrives at 1 byte/s: the process exits within the shutdown deadline, the upload
    gets a 503, and a customer's websocket is closed with 1012 (service restart: the page reconnects)."""
    env = server_env(
        redis_target, tmp_path, LIVEMAP_SHUTDOWN_TIMEOUT_S=str(SHUTDOWN_S), LIVEMAP_BODY_TIMEOUT_S="60"
    )  # a body timeout far away: the deadline is what ends the upload
    srv = Server(env, "S")
    try:
        shop = await new_shop(http, srv)
        sock = await customer_socket(srv, await shop.order("at-shutdown"))
        reader, writer = await _open(srv)
        async with _closing([(reader, writer)]):
            writer.write(
                b"POST /api/stores HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Authorization: Bearer " + ADMIN.encode() + b"\r\nContent-Length: 100\r\n\r\n"
            )
            dribbler = asyncio.create_task(_dribble(writer, b'{"name": "' + b"x" * 88 + b'"}', 1.0))
            await asyncio.sleep(1.0)  # the endpoint is reading the body
            started = time.monotonic()
            srv.proc.terminate()
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(sock.conn.recv(), wait(10))
            code = closed.value.rcvd.code if closed.value.rcvd else None
            print(f"\nwebsocket closed with {code} after {time.monotonic() - started:.2f} s")
            try:
                await asyncio.to_thread(srv.proc.wait, SHUTDOWN_S + wait(10))
            except Exception:
                srv.proc.kill()
                raise
            elapsed = time.monotonic() - started
            dribbler.cancel()
            _, sent = await _until_closed(reader, started, SHUTDOWN_S + wait(10))
    finally:
        srv.stop()
    print(f"SIGTERM, 1 byte/s upload: exited after {elapsed:.2f} s (deadline {SHUTDOWN_S} s); websocket: {code}")
    assert elapsed <= SHUTDOWN_S + wait(2)
    assert code == 1012
    # Cut at the deadline by the server, not cancelled by it: told to send again, nothing logged as an error.
    assert sent.startswith(b"HTTP/1.1 503 "), sent
    assert not any("Exception in ASGI application" in line for line in srv.output), "".join(srv.output)
