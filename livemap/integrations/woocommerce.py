"""WooCommerce: `POST /integrations/woocommerce/{store}` takes the shop's own webhook deliveries.

WooCommerce (Settings > Advanced > Webhooks) posts the order as its REST API (v3) returns it, with
`X-WC-Webhook-Topic` (`order.created`, `order.updated`, ...) and `X-WC-Webhook-Signature`: base64 of
the HMAC-SHA256 of the raw body, keyed with the webhook's secret. When a webhook is saved it first
posts an unsigned ping, the form body `webhook_id=N`, and keeps the webhook only if that gets a 200.
"""

from __future__ import annotations

import re

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from livemap.domain.stages import Stage
from livemap.integrations.common import (
    Incoming,
    IntegrationResult,
    PlatformId,
    Targets,
    apply,
    check_signature,
    clean,
    configured,
    customer,
    decode,
    epoch_ms,
    order_id,
    read_body,
    respond,
    store_settings,
)
from livemap.integrations.geocode import Address

PLATFORM = "woocommerce"
TOPICS = frozenset({"order.created", "order.updated"})
_PING = re.compile(rb"webhook_id=[0-9]+")

#: WooCommerce's order statuses -> livemap stages (a store's `status_map` overrides each).
STAGES: dict[str, Targets] = {
    "pending": (Stage.RECEIVED,),  # awaiting payment
    "on-hold": (Stage.RECEIVED,),  # awaiting a manual payment (bank transfer)
    "processing": (Stage.PROCESSING,),  # paid, being prepared
    "completed": (Stage.SHIPPED,),  # fulfilled: handed to delivery, which livemap tracks from here
    "cancelled": (Stage.CANCELLED,),
    "refunded": (Stage.RETURNED, Stage.CANCELLED),  # returned after delivery, else cancelled
    "failed": (),  # the payment failed; the customer may retry it
    "checkout-draft": (),
    "trash": (),
}


class WcAddress(msgspec.Struct):
    """A billing or shipping address (`email` only on billing; `phone` on shipping since WooCommerce 5.6)."""

    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    address_1: str | None = None
    address_2: str | None = None
    city: str | None = None
    state: str | None = None
    postcode: str | None = None
    country: str | None = None
    email: str | None = None
    phone: str | None = None

    def name(self) -> str:
        return clean(f"{self.first_name or ''} {self.last_name or ''}") or clean(self.company)

    def address(self) -> Address:
        return Address(
            street=tuple(s for s in (clean(self.address_1), clean(self.address_2)) if s),
            city=clean(self.city),
            region=clean(self.state),
            postcode=clean(self.postcode),
            country=clean(self.country),
        )


class WcOrder(msgspec.Struct):
    """A WooCommerce order as its webhooks deliver it (the REST API's order; the fields livemap reads)."""

    id: PlatformId
    number: str | PlatformId | None = None
    status: str = ""
    billing: WcAddress = msgspec.field(default_factory=WcAddress)
    shipping: WcAddress = msgspec.field(default_factory=WcAddress)
    date_modified_gmt: str | None = None
    date_created_gmt: str | None = None


def incoming(order: WcOrder) -> Incoming:
    """What livemap takes from a WooCommerce order: shipping address (else billing), contact, status."""
    number = str(order.number if order.number is not None else order.id)
    ship, bill = order.shipping, order.billing
    address = ship.address()
    if address.empty:  # virtual orders, or a theme that leaves shipping empty: the billing address is the one
        address = bill.address()
    return Incoming(
        platform=PLATFORM,
        external_id=str(order.id),
        number=order_id(number, f"wc-{order.id}"),
        statuses=[order.status] if order.status else [],
        customer=customer(ship.name() or bill.name(), bill.email, ship.phone or bill.phone, f"Order {number}"),
        address=address,
        updated_at=epoch_ms(order.date_modified_gmt),
        placed_at=epoch_ms(order.date_created_gmt),
    )


async def webhook(request: Request) -> Response:
    """`POST /integrations/woocommerce/{store}`: a WooCommerce webhook delivery, or its creation ping."""
    sid, settings = await store_settings(request)
    body = await read_body(request)
    topic = request.headers.get("x-wc-webhook-topic")
    if topic is None and _PING.fullmatch(body.strip()):
        # Unsigned and carrying nothing: it only proves the URL works (answered before a secret is set).
        return respond(IntegrationResult("ping"))
    secret, status_map = configured(settings.integrations.woocommerce, PLATFORM)
    check_signature(body, secret, request.headers.get("x-wc-webhook-signature"), "X-WC-Webhook-Signature")
    if topic not in TOPICS:
        return respond(IntegrationResult("ignored", detail=f"topic {topic!r} is not an order creation or update"))
    order = decode(body, WcOrder)
    # A customer note is where WooCommerce takes the tracking link, and it may go as soon as the order
    # exists (Shopify's waits for the order to ship: notify.shop).
    writeback = settings.integrations.write_back(PLATFORM) is not None
    return await apply(
        request, sid, settings, incoming(order), defaults=STAGES, status_map=status_map, writeback=writeback
    )
