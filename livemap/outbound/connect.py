"""Connections to store-chosen destinations, vetted after DNS resolution on every connect.

Checking a URL only when it is saved is not enough: its name may resolve elsewhere tomorrow (or
differently on every lookup: DNS rebinding). So the check sits where the socket is opened: the
name is resolved once, every address it has is vetted (`policy`), and the connection goes to a
vetted address, never to the name again. HTTP goes through httpx with that connect step swapped
in (TLS still verifies the certificate against the name); SMTP gets a socket connected the same way.
Redirects are never followed, so a destination cannot bounce livemap somewhere else.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import httpcore
import httpx

from livemap.outbound.policy import OutboundPolicy

T = TypeVar("T")

#: Resolving a name may take at most this long.
RESOLVE_TIMEOUT_S = 10.0


async def resolve(host: str, port: int) -> list[str]:
    """Every address of ``host`` (a literal address: itself); OSError when the name does not resolve."""
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT_S)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def vetted(host: str, port: int, policy: OutboundPolicy) -> list[str]:
    """``host``'s addresses, each allowed by ``policy``; OutboundRefused when any is not (a name with one
    internal address among public ones is refused: which one a connection would get is not ours to pick)."""
    addresses = await resolve(host, port)
    for address in addresses:
        policy.check(host, address)
    return addresses


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to vetted addresses."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await vetted(host, port, self._policy)
        except (OSError, TimeoutError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc

        async def connect(address: str) -> httpcore.AsyncNetworkStream:
            return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)

        return await _first_connected(addresses, connect, (httpcore.ConnectError, httpcore.ConnectTimeout))

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("a store's destination is never a unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guarded_client(policy: OutboundPolicy, timeout_s: float, **kwargs: Any) -> httpx.AsyncClient:
    """An httpx client for store destinations: vetted connections, no redirects, no proxies from the environment."""
    transport = httpx.AsyncHTTPTransport()
    # httpx takes no network backend; its transport's pool is the one place to give it ours.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(), network_backend=GuardedBackend(policy)
    )
    return httpx.AsyncClient(transport=transport, timeout=timeout_s, follow_redirects=False, trust_env=False, **kwargs)


async def post_for_status(client: httpx.AsyncClient, url: str, **kwargs: Any) -> int:
    """POST and return the status code, reading none of the body: a huge or endless answer costs nothing."""
    async with client.stream("POST", url, **kwargs) as response:
        return response.status_code


async def get_capped(client: httpx.AsyncClient, url: str, limit: int, **kwargs: Any) -> tuple[int, bytes | None]:
    """GET: the status code and, for a 2xx answer, its body; None when the body is over ``limit`` bytes
    (reading stops there, so a huge or endless answer costs at most that)."""
    async with client.stream("GET", url, **kwargs) as response:
        if not 200 <= response.status_code < 300:
            return response.status_code, b""
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > limit:
                return response.status_code, None
        return response.status_code, bytes(body)


async def smtp_socket(host: str, port: int, policy: OutboundPolicy, timeout_s: float) -> socket.socket:
    """A non-blocking socket connected to a vetted address of ``host`` (for aiosmtplib's ``sock``)."""
    loop = asyncio.get_running_loop()

    async def connect(address: str) -> socket.socket:
        sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(sock, (address, port)), timeout_s)
        except TimeoutError:
            sock.close()
            raise OSError(f"connecting to {address}:{port} timed out") from None
        except OSError:
            sock.close()
            raise
        return sock

    return await _first_connected(await vetted(host, port, policy), connect, (OSError,))


async def _first_connected(
    addresses: list[str], connect: Callable[[str], Awaitable[T]], errors: tuple[type[Exception], ...]
) -> T:
    """The first of ``addresses`` (never empty: `resolve` raises instead) that connects; when none does,
    the last one's failure."""
    for address in addresses[:-1]:
        try:
            return await connect(address)
        except errors:
            continue
    return await connect(addresses[-1])
