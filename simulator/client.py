"""The livemap REST API as the simulator uses it: typed requests and replies over httpx."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import msgspec

T = TypeVar("T")

# Statuses worth retrying: the server is starting, restarting, overloaded or behind a proxy
# that is. Anything else in 4xx is our request's fault and will fail the same way again.
_TRANSIENT = frozenset({0, 408, 425, 429, 500, 502, 503, 504})


class ApiError(Exception):
    """A failed API call: ``status`` 0 when the server could not be reached at all."""

    def __init__(self, method: str, path: str, status: int, code: str, message: str) -> None:
        super().__init__(f"{method} {path}: {status} {code}: {message}" if status else f"{method} {path}: {message}")
        self.method = method
        self.path = path
        self.status = status
        self.code = code
        self.message = message

    @property
    def transient(self) -> bool:
        """Whether the same call may succeed if tried again later."""
        return self.status in _TRANSIENT


class Point(msgspec.Struct):
    lat: float
    lon: float


class Customer(msgspec.Struct, omit_defaults=True):
    name: str
    email: str | None = None
    phone: str | None = None


class NewOrder(msgspec.Struct, omit_defaults=True):
    """Body of ``POST /api/orders``."""

    id: str
    customer: Customer
    destination: Point
    address: str | None = None
    origin: Point | None = None
    route: list[list[float]] | None = None
    promised_by: int | None = None
    tracking_number: str | None = None
    carrier: str | None = None


class StoreCreated(msgspec.Struct):
    id: str
    api_key: str


class DriverCreated(msgspec.Struct):
    id: str
    token: str


class OrderCreated(msgspec.Struct):
    id: str
    tracking_id: str
    tracking_token: str
    tracking_url: str
    stage: str


class _ErrorBody(msgspec.Struct):
    code: str = "error"
    message: str = ""


class _ErrorReply(msgspec.Struct):
    error: _ErrorBody


class LivemapClient:
    """REST client for one livemap server; ``api_key`` authenticates store calls once set."""

    def __init__(self, base_url: str, *, api_key: str | None = None, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        # Keep-alive connections are reused by all drivers; the pool bound stops a large run from
        # opening hundreds of sockets when the server is slow.
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=timeout_s,
            # Idle connections are dropped before the server's keep-alive (LIVEMAP_KEEP_ALIVE_TIMEOUT_S, 5 s)
            # closes them: with equal timeouts a request could go out on a socket the server is closing.
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=32, keepalive_expiry=2.0),
            headers={"user-agent": "livemap-simulator"},
        )

    async def __aenter__(self) -> LivemapClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def absolute(self, url: str) -> str:
        """``url`` made absolute against the server, for links the server may give relative."""
        return url if "://" in url else f"{self.base_url}/{url.lstrip('/')}"

    async def _call(
        self,
        method: str,
        path: str,
        reply: type[T],
        *,
        body: Any = None,
        token: str | None = None,
        auth: bool = True,
        query: dict[str, str] | None = None,
    ) -> T:
        headers = {}
        bearer = token if token is not None else self.api_key
        if auth and bearer is not None:
            headers["authorization"] = f"Bearer {bearer}"
        content = None
        if body is not None:
            content = msgspec.json.encode(body)
            headers["content-type"] = "application/json"
        try:
            response = await self._http.request(method, path, content=content, headers=headers, params=query)
        except httpx.TransportError as exc:
            raise ApiError(method, path, 0, "unreachable", str(exc) or type(exc).__name__) from exc
        if response.is_error:
            try:
                err = msgspec.json.decode(response.content, type=_ErrorReply).error
                code, message = err.code, err.message
            except msgspec.DecodeError:
                code, message = "http_error", response.reason_phrase
            raise ApiError(method, path, response.status_code, code, message)
        try:
            return msgspec.json.decode(response.content, type=reply)
        except msgspec.DecodeError as exc:
            raise ApiError(method, path, response.status_code, "bad_reply", f"unexpected reply: {exc}") from exc

    async def create_store(self, admin_token: str, name: str) -> StoreCreated:
        """``POST /api/stores`` with the admin token."""
        return await self._call("POST", "/api/stores", StoreCreated, body={"name": name}, token=admin_token)

    async def patch_store(self, patch: dict[str, Any]) -> dict[str, Any]:
        """``PATCH /api/store``: merge ``patch`` into the store's settings."""
        return await self._call("PATCH", "/api/store", dict, body=patch)

    async def create_driver(self, name: str, driver_id: str | None = None, vehicle: str | None = None) -> DriverCreated:
        """``POST /api/drivers``; ``vehicle`` (car, motorbike, van, bicycle, foot) sets the ETA's prior speed."""
        body = {"name": name} if driver_id is None else {"id": driver_id, "name": name}
        if vehicle is not None:
            body["vehicle"] = vehicle
        return await self._call("POST", "/api/drivers", DriverCreated, body=body)

    async def create_order(self, order: NewOrder) -> OrderCreated:
        """``POST /api/orders``."""
        return await self._call("POST", "/api/orders", OrderCreated, body=order)

    async def bulk_orders(self, orders: list[NewOrder]) -> dict[str, Any]:
        """``POST /api/orders:bulk``: the reply's counts and each item's answer."""
        return await self._call("POST", "/api/orders:bulk", dict, body=orders)

    async def bulk_drivers(self, drivers: list[dict[str, str]]) -> dict[str, Any]:
        """``PUT /api/drivers:bulk``."""
        return await self._call("PUT", "/api/drivers:bulk", dict, body=drivers)

    async def assign(self, order_id: str, driver_id: str) -> dict[str, Any]:
        """``POST /api/orders/{id}/assign``."""
        path = f"/api/orders/{quote(order_id, safe='')}/assign"
        return await self._call("POST", path, dict[str, Any], body={"driver_id": driver_id})

    async def set_stage(self, order_id: str, stage: str, note: str | None = None) -> dict[str, Any]:
        """``POST /api/orders/{id}/stage``."""
        body = {"stage": stage} if note is None else {"stage": stage, "note": note}
        return await self._call("POST", f"/api/orders/{quote(order_id, safe='')}/stage", dict[str, Any], body=body)

    async def get_order(self, order_id: str) -> dict[str, Any]:
        """``GET /api/orders/{id}``."""
        return await self._call("GET", f"/api/orders/{quote(order_id, safe='')}", dict[str, Any])

    async def track(self, tracking_id: str, tracking_token: str) -> dict[str, Any]:
        """``GET /api/track/{tracking_id}?t=...``: the customer's snapshot (no store key sent)."""
        # The token goes in `query`, not `path`, so that it never appears in an ApiError message.
        path = f"/api/track/{quote(tracking_id, safe='')}"
        return await self._call("GET", path, dict[str, Any], auth=False, query={"t": tracking_token})


async def with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    attempts: int = 6,
    first_delay_s: float = 0.5,
    on_retry: Callable[[ApiError], None] | None = None,
) -> T:
    """Await ``call()``, retrying transient failures with exponential backoff (0.5, 1, 2, 4, 8 s...)."""
    delay = first_delay_s
    for attempt in range(attempts):
        try:
            return await call()
        except ApiError as exc:
            if not exc.transient or attempt == attempts - 1:
                raise
            if on_retry is not None:
                on_retry(exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 8.0)
    raise AssertionError("unreachable")
