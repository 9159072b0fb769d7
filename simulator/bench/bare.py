"""The transport ceiling: a bare Starlette websocket on uvicorn, ``python -m simulator.bench.bare``.

`/ws/driver` decodes each message as JSON and answers a tiny ack: the closed loop livemap's
drivers run, with nothing behind it (no Redis, no ETA, no fan-out). uvicorn is configured as
livemap configures it (same websocket implementation, per-message deflate off, same frame limit,
httptools when installed), on uvloop when installed unless ``--loop asyncio``, so the gap between
the two is livemap's own work.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket

import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

#: livemap's transport frame limit (`livemap.cli.WS_MAX_SIZE`).
WS_MAX_SIZE = 2 * 1024 * 1024
_ACK = '{"type":"ack"}'


async def _driver(ws: WebSocket) -> None:
    await ws.accept()
    try:
        while True:
            json.loads(await ws.receive_text())  # the stdlib's, as the peers' bare floor decodes
            await ws.send_text(_ACK)
    except WebSocketDisconnect:
        pass


def _server(loop: str) -> tuple[uvicorn.Server, socket.socket]:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    app = Starlette(routes=[WebSocketRoute("/ws/driver", _driver)])
    config = uvicorn.Config(
        app,
        loop=loop,
        log_level="warning",
        lifespan="off",
        ws_max_size=WS_MAX_SIZE,
        ws_per_message_deflate=False,
        server_header=False,
    )
    return uvicorn.Server(config), sock


async def _announce(server: uvicorn.Server, port: int) -> None:
    while not server.started:  # uvicorn has no "started" event to wait on
        if server.should_exit:
            return
        await asyncio.sleep(0.02)
    print(f"bare listening on http://127.0.0.1:{port}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m simulator.bench.bare", description=__doc__)
    parser.add_argument("--loop", choices=["auto", "asyncio", "uvloop"], default="auto", help="event loop")
    args = parser.parse_args()
    server, sock = _server(args.loop)

    async def serve() -> None:
        announce = asyncio.create_task(_announce(server, sock.getsockname()[1]))
        try:
            await server.serve(sockets=[sock])
        finally:
            announce.cancel()

    # The loop uvicorn's own runner would pick: the one `--loop` names (uvloop by default when installed).
    with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
        runner.run(serve())


if __name__ == "__main__":
    main()
