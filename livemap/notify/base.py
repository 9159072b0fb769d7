"""What every channel shares: the notice being delivered and the error a failed attempt raises."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import msgspec

from livemap.domain.i18n import Lang
from livemap.domain.records import Order
from livemap.domain.storesettings import StoreSettings
from livemap.logs import redact
from livemap.outbound.connect import get_capped, post_for_status
from livemap.outbound.policy import OutboundRefused

T = TypeVar("T")


class DeliveryError(Exception):
    """One attempt failed. `permanent`: retrying cannot help (a 5xx SMTP reply, a channel not configured)."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


async def post(client: httpx.AsyncClient, what: str, url: str, **kwargs: Any) -> None:
    """POST to a store's ``what`` (its webhook, its SMS provider); any answer but 2xx is a failed attempt.

    An internal destination is refused for good; the answer's body is never read.
    """
    _check(what, await _attempt(what, post_for_status(client, url, **kwargs)))


async def get_json(client: httpx.AsyncClient, what: str, url: str, kind: type[T], limit: int, **kwargs: Any) -> T:
    """GET a JSON document of type ``kind`` (at most ``limit`` bytes) from a store's ``what``, failing as `post`
    does; an answer that is too large or not ``kind`` is a failed attempt too."""
    status, body = await _attempt(what, get_capped(client, url, limit, **kwargs))
    _check(what, status)
    if body is None:
        raise DeliveryError(f"{what} answered more than {limit} bytes")
    try:
        return msgspec.json.decode(body, type=kind)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise DeliveryError(f"{what} answered an unexpected body: {exc}") from None


async def _attempt(what: str, request: Awaitable[T]) -> T:
    """`request`'s result; a refused destination is a permanent failure, a network error a failed attempt."""
    try:
        return await request
    except OutboundRefused as exc:
        raise DeliveryError(f"{what}: {exc}", permanent=True) from None
    except httpx.HTTPError as exc:
        raise DeliveryError(redact(f"{what} request failed: {type(exc).__name__}: {exc}")) from None


def _check(what: str, status: int) -> None:
    if not 200 <= status < 300:
        raise DeliveryError(f"{what} answered HTTP {status}")


@dataclass(frozen=True, slots=True)
class Notice:
    """One notifiable event of one order, with everything a channel needs to word and address it."""

    #: The idempotency key: the id the event got in the outbox stream, kept across retries.
    event_id: str
    #: What the store's `notifications.events` map is keyed by: the stage (`shipped`...), `arriving`, `delayed`.
    key: str
    #: The event's own type: `stage`, `arriving` or `delayed`.
    kind: str
    #: Epoch ms when the event happened (from the outbox id).
    created_at: int
    store_id: str
    store: StoreSettings
    order: Order
    #: The event as dispatchers see it (`order_id`, `tracking_id`, `type` and the event's fields).
    data: dict[str, Any]
    lang: Lang
    tracking_url: str
    #: One-click unsubscribe links of this order (signed), for the email's footer and headers and the SMS's end.
    unsubscribe_email: str = ""
    unsubscribe_sms: str = ""
    #: 1 for the first attempt of this delivery, then 2, 3...
    attempt: int = 1
