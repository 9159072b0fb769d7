"""Webhooks out to the store: a JSON POST signed with the store's webhook secret.

``X-Livemap-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">``: the timestamp is
signed with the body so a receiver can refuse a replayed request (older than 5 minutes). The body
is the same on every attempt; ``X-Livemap-Event-Id`` (also the body's ``id``) is the idempotency key.
"""

from __future__ import annotations

import hashlib
import hmac
import time

import httpx
import msgspec

from livemap.domain.storesettings import Webhook
from livemap.notify.base import DeliveryError, Notice, post

_encode = msgspec.json.Encoder().encode


class WebhookBody(msgspec.Struct):
    """What the store receives."""

    #: The idempotency key (the same on every retry): drop a request whose id you already processed.
    id: str
    #: The stage (`shipped`, `delivered`, `failed_attempt`...), `arriving` or `delayed`.
    event: str
    #: Epoch ms when it happened.
    created_at: int
    store_id: str
    order_id: str
    tracking_id: str
    #: The customer's tracking page.
    tracking_url: str
    #: The event as the dispatcher socket sends it (`type`, and `stage`/`note`, `eta_at`/`promised_by`/`resolved`...).
    data: dict[str, object]


def body(notice: Notice) -> bytes:
    """The request body: a pure function of the event, so every retry sends the same bytes."""
    return _encode(
        WebhookBody(
            id=notice.event_id,
            event=notice.key,
            created_at=notice.created_at,
            store_id=notice.store_id,
            order_id=notice.order["id"],
            tracking_id=notice.order.tracking_id,
            tracking_url=notice.tracking_url,
            data=notice.data,
        )
    )


def signature(secret: str, raw: bytes, timestamp: int) -> str:
    """The `X-Livemap-Signature` header value for `raw` sent at `timestamp` (unix seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


async def send(client: httpx.AsyncClient, notice: Notice, config: Webhook | None) -> None:
    """POST the event to the store's webhook URL; any answer but 2xx is a failed attempt."""
    if config is None or not config.url:
        raise DeliveryError("notifications.webhook.url is not set", permanent=True)
    if not config.secret:
        raise DeliveryError("notifications.webhook.secret is not set", permanent=True)
    raw = body(notice)
    headers = {
        "Content-Type": "application/json",
        "X-Livemap-Signature": signature(config.secret, raw, int(time.time())),
        "X-Livemap-Event-Id": notice.event_id,
        "X-Livemap-Event": notice.key,
        "X-Livemap-Attempt": str(notice.attempt),
    }
    await post(client, "webhook", config.url, content=raw, headers=headers)
