"""The `livemap` command: `serve` the server, `demo` server + simulated drivers, `worker` the notifications."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from livemap import tasks
from livemap.app import admin_token, create_app
from livemap.logs import log_config
from livemap.notify import worker as notify_worker
from livemap.realtime.wsprotocol import LeanWebSocketProtocol
from livemap.routing.sample import helsinki_extract
from livemap.settings import Settings
from livemap.storage import layout
from livemap.storage.connection import open_redis
from livemap.storage.keys import Keys
from livemap.trackers.endpoints import OsmandPort
from livemap.web.httpprotocol import TimedHttpProtocol
from livemap.web.wsdirect import DirectSockets

# The application answers frames up to LIVEMAP_MAX_FRAME_BYTES with a typed error and keeps the
# socket; the transport closes anything above this with 1009 before it is buffered whole.
WS_MAX_SIZE = 2 * 1024 * 1024
#: Below this many open files a process holds fewer sockets than it is sized for (10,000 customers each).
FEW_FILES = 4096

log = logging.getLogger("livemap")


def raise_open_files_limit() -> tuple[int, int] | None:
    """Raise this process's soft limit of open files to its hard limit: (before, now), None where unknown.

    Every connection is an open file, and the soft limit many systems start a process with (1,024) is
    far below what a server holding thousands of websockets needs; the hard limit is what the
    operator allows (`ulimit -Hn`, systemd's `LimitNOFILE=`).
    """
    try:
        import resource
    except ImportError:  # Windows: no such limit
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # An unlimited hard limit (macOS) cannot be the soft one: the kernel caps it lower.
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft, soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        return soft, soft
    return soft, target


class CannotListen(Exception):
    """A port livemap was told to listen on cannot be had; the message is the one line the console shows."""


def _bind(host: str, port: int, retry: str) -> socket.socket:
    """A socket bound to (host, port), or CannotListen; `retry` says how to ask for another port ({port})."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        # A newcomer's usual first error (a second `make run`): one line that says what to do, not a traceback.
        raise CannotListen(_why_not(exc, host, port, retry)) from None
    sock.set_inheritable(True)
    return sock


def _why_not(exc: OSError, host: str, port: int, retry: str) -> str:
    other = retry.format(port=port + 1 if 0 < port < 65535 else 8000)
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} is in use (another livemap?); pick another with {other}"
    if exc.errno == errno.EACCES:
        return f"no permission to listen on port {port} (below 1024 needs root); pick another with {other}"
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}"


def _listen(host: str, port: int, osmand_port: int | None, retry: str) -> list[socket.socket]:
    """The server's sockets: the main port, then Traccar Client's (when asked for); all or none."""
    sockets = [_bind(host, port, retry)]
    if osmand_port is not None:
        try:
            # Traccar Client's default server port; the same app answers there, limited to `/ingest/...`.
            sockets.append(_bind(host, osmand_port, "--osmand-port {port}"))
        except CannotListen:
            sockets[0].close()
            raise
    return sockets


def make_server(settings: Settings, log_level: str = "info", osmand_port: int | None = None) -> uvicorn.Server:
    app: ASGIApp = DirectSockets(create_app(settings))
    if osmand_port is not None:
        app = OsmandPort(app, osmand_port)
    config = uvicorn.Config(
        app,
        log_config=log_config(log_level, settings.json_logs),
        log_level=log_level,
        lifespan="on",
        ws_max_size=WS_MAX_SIZE,
        ws_per_message_deflate=False,
        ws=LeanWebSocketProtocol,
        # uvicorn bounds only the wait between requests; this protocol bounds headers and bodies too.
        http=TimedHttpProtocol.with_limits(
            settings.header_timeout_s, settings.body_timeout_s, settings.body_min_bytes_per_s
        ),
        timeout_keep_alive=settings.keep_alive_timeout_s,
        # Without it, SIGTERM waits for every request under way, however slowly its client sends.
        timeout_graceful_shutdown=settings.shutdown_timeout_s,
        # No limit_concurrency: it counts websockets too, so a busy process would answer 503 to its
        # health checks and API calls once that many customers watch; the timeouts above are what
        # keeps clients that hold connections without using them from filling the process.
        proxy_headers=True,
        server_header=False,
    )
    return uvicorn.Server(config)


async def _serve(
    settings: Settings,
    host: str,
    port: int,
    log_level: str,
    on_ready: list[str] | None = None,
    osmand_port: int | None = None,
    retry: str = "--port {port}",
) -> None:
    sockets = _listen(host, port, osmand_port, retry)
    bound = sockets[0].getsockname()[1]
    if settings.worker_inline and not settings.public_url:
        # The notifications worker has no request to take an origin from: its links point here.
        settings = replace(settings, public_url=f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{bound}")
    if osmand_port is not None:
        osmand_port = sockets[1].getsockname()[1]
    files = raise_open_files_limit()
    server = make_server(settings, log_level, osmand_port)  # configures logging
    if files is not None:
        before, now = files
        raised = f" (raised from {before})" if now != before else ""
        log.info("open files: up to %d%s, so about as many connections", now, raised)
        if now < FEW_FILES:
            log.warning("open files: only %d; raise the hard limit (ulimit -Hn, systemd LimitNOFILE=)", now)

    async def announce() -> None:
        while not server.started:
            if server.should_exit:
                return
            await asyncio.sleep(0.05)
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        print(f"livemap listening on http://{shown}:{bound}", flush=True)
        if osmand_port is not None:
            print(f"OsmAnd / Traccar Client devices: http://{shown}:{osmand_port}/?token=DRIVER_TOKEN", flush=True)
        if on_ready:
            await _run_child([arg.format(url=f"http://{shown}:{bound}") for arg in on_ready], server)

    task = asyncio.create_task(announce())
    try:
        await server.serve(sockets=sockets)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        for s in sockets:
            s.close()


async def _run_child(command: list[str], server: uvicorn.Server) -> None:
    """Run the demo's simulator next to the server; when either stops, both stop."""
    # exec, not a shell: our signals must reach the simulator itself, not an intermediate /bin/sh.
    proc = await asyncio.create_subprocess_exec(*command)
    try:
        await proc.wait()
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
        server.should_exit = True


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="livemap", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server (embedded Redis unless LIVEMAP_REDIS_URL is set)")
    demo = sub.add_parser("demo", help="run the server and simulated drivers; prints the links to open")
    worker = sub.add_parser("worker", help="send notifications (webhooks, email, SMS) from the outbox")
    sub.add_parser(
        "migrate",
        help="upgrade the Redis that LIVEMAP_REDIS_URL names (or the embedded one) to this livemap's key layout",
    )
    levels = ["critical", "error", "warning", "info", "debug"]
    for p, level in ((serve, "info"), (demo, "warning")):  # the demo keeps its console for the links
        p.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        p.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        p.add_argument("--log-level", default=level, choices=levels)
    serve.add_argument(
        "--osmand-port",
        type=int,
        default=None,
        metavar="PORT",
        help="also take Traccar Client / OsmAnd devices at the root of this port (the apps' default: 5055)",
    )
    worker.add_argument("--log-level", default="info", choices=levels)
    worker.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        metavar="PORT",
        help="serve the worker's /metrics (Prometheus) on 127.0.0.1:PORT, for a scraper on the same host",
    )
    demo.add_argument("--drivers", type=int, default=5, help="simulated drivers (default 5)")
    demo.add_argument(
        "--speedup", type=float, default=1.0, help="simulated seconds per wall second (default 1: ETAs in real time)"
    )
    return parser


async def _migrate(settings: Settings) -> None:
    """`livemap migrate`: say what was moved; a Redis already current is left as it is."""
    async with open_redis(settings.redis_url, Path(settings.data_dir)) as (db, url, _):
        keys = Keys(settings.key_prefix)
        done = await layout.migrate(db.client, keys)
    if done is None:
        print(
            f"livemap migrate: {url} (prefix {keys.prefix!r}) is already at key layout {layout.VERSION}; nothing to do"
        )
        return
    print(f"livemap migrate: {url} (prefix {keys.prefix!r}) is now at key layout {layout.VERSION}")
    for what, count in sorted(done.items()):
        print(f"  {what}: {count:,}")


def _demo(settings: Settings, args: argparse.Namespace) -> tuple[Settings, list[str]]:
    """The demo's settings and the simulator's command line."""
    settings = replace(settings, worker_inline=True)  # `make run` sends notifications too
    sample = helsinki_extract()
    if sample is not None and not (settings.osm_pbf or settings.router_url):
        settings = replace(settings, osm_pbf=str(sample))
    # Helsinki's orders go out without routes, for the server to route on that map; with no sample,
    # or a router of the operator's own (which may not cover Helsinki), a grid whose orders carry routes.
    world = "helsinki" if sample is not None and settings.osm_pbf == str(sample) else "grid"
    os.environ["LIVEMAP_ADMIN_TOKEN"] = admin_token(settings)  # the simulator creates the demo store with it
    command = [
        sys.executable, "-m", "simulator", "run", "--url", "{url}", "--drivers", str(args.drivers),
        "--speedup", str(args.speedup), "--links-file", str(Path(settings.data_dir) / "demo-links.txt"),
        "--world", world,
    ]  # fmt: skip
    return settings, command


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `livemap` console script."""
    args = _parser().parse_args(argv)
    settings = Settings.from_env()
    if args.command == "worker":
        notify_worker.main(settings, args.log_level, args.metrics_port)
        return
    if args.command == "migrate":
        tasks.run(_migrate(settings))
        return
    on_ready, retry = None, "--port {port}"
    if args.command == "demo":
        settings, on_ready = _demo(settings, args)
        retry = "PORT={port} make run"  # what `livemap demo` is started by
    osmand_port = getattr(args, "osmand_port", None)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            tasks.run(_serve(settings, args.host, args.port, args.log_level, on_ready, osmand_port, retry))
    except CannotListen as exc:
        sys.exit(f"livemap: {exc}")
