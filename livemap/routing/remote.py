"""What the OSRM and Valhalla providers share: one HTTP client per router, bounded in time and size.

A request to the router is bounded as a whole by the router timeout (connect, send and every read
together, so a server that trickles its answer is cut off too), its reply by a size cap (read as a
stream and refused past the cap, before it is all in memory), and redirects are never followed.
Credentials in the URL's userinfo are sent as HTTP Basic auth and never shown: logs, errors and
`repr` carry `Endpoint.shown` (no userinfo, no query string, which may hold an API key).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx

from livemap.routing.base import RouterUnavailable

#: The largest reply read from a router: a route across a continent is a few MiB of coordinates.
MAX_REPLY_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A router's base URL, split into what is requested, what authenticates and what may be shown."""

    base: httpx.URL  # scheme, host, port, path prefix and query; never userinfo
    auth: httpx.BasicAuth | None
    shown: str  # for logs and errors: scheme://host[:port][/path]

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        """`http(s)://[user:password@]host[:port][/prefix][?key=...]`; ValueError names no secret."""
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL:
            raise ValueError("the router URL is not a valid URL") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError("the router URL must be http:// or https:// with a host")
        auth = None
        if parsed.userinfo:
            auth = httpx.BasicAuth(parsed.username, parsed.password)  # both percent-decoded by httpx
        base = parsed.copy_with(userinfo=b"", fragment=None)
        return cls(base=base, auth=auth, shown=shown_url(base))

    def url(self, path: str, params: dict[str, str] | None = None) -> httpx.URL:
        """`path` under the base URL's path prefix, with the base's query parameters and `params`."""
        joined = self.base.copy_with(path=self.base.path.rstrip("/") + path)
        return joined.copy_merge_params(params) if params else joined


def shown_url(url: httpx.URL) -> str:
    """What of a URL may reach a log line: no userinfo, no query string, no fragment."""
    netloc = url.host if ":" not in url.host else f"[{url.host}]"
    port = f":{url.port}" if url.port is not None else ""
    return f"{url.scheme}://{netloc}{port}{url.path.rstrip('/')}"


@dataclass(frozen=True, slots=True)
class Reply:
    """A router's answer, read in full (within the size cap)."""

    status: int
    body: bytes


class RouterClient:
    """One pooled `httpx.AsyncClient` for one router; every failure to get a reply is `RouterUnavailable`."""

    def __init__(self, provider: str, endpoint: Endpoint, timeout_s: float, max_bytes: int = MAX_REPLY_BYTES) -> None:
        self.provider = provider
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self._client = httpx.AsyncClient(
            auth=endpoint.auth,
            timeout=httpx.Timeout(timeout_s),
            follow_redirects=False,
            trust_env=False,  # the router is named by LIVEMAP_ROUTER_URL alone, not by proxy variables
            headers={"User-Agent": "livemap-routing/1", "Accept": "application/json"},
        )

    def unavailable(self, reason: str) -> RouterUnavailable:
        return RouterUnavailable(f"{self.provider} at {self.endpoint.shown}: {reason}")

    async def request(
        self, method: str, path: str, *, params: dict[str, str] | None = None, json: bytes | None = None
    ) -> Reply:
        """Send one request and read its whole reply, within the timeout and the size cap."""
        if self._client.is_closed:
            raise self.unavailable("the router was closed")
        headers = {"Content-Type": "application/json"} if json is not None else None
        url = self.endpoint.url(path, params)
        try:
            async with (
                asyncio.timeout(self.timeout_s),
                self._client.stream(method, url, content=json, headers=headers) as response,
            ):
                declared = response.headers.get("Content-Length", "")
                if declared.isdigit() and int(declared) > self.max_bytes:
                    raise self.unavailable(f"a reply of {declared} bytes, over the {self.max_bytes} byte cap")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise self.unavailable(f"a reply over the {self.max_bytes} byte cap")
                return Reply(response.status_code, bytes(body))
        except TimeoutError:
            raise self.unavailable(f"no reply within {self.timeout_s:g} s") from None
        except httpx.TimeoutException:
            raise self.unavailable(f"no reply within {self.timeout_s:g} s") from None
        except (httpx.HTTPError, httpx.StreamError) as exc:
            # Transport errors name the host and port at most: the request URL (which carries the
            # route's coordinates and may carry a key) is never part of the message.
            raise self.unavailable(f"{type(exc).__name__}: {exc}") from None

    async def aclose(self) -> None:
        await self._client.aclose()
