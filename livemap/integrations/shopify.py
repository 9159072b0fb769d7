"""Shopify: `POST /integrations/shopify/{store}` takes the shop's order and fulfillment webhooks.

Shopify posts JSON with `X-Shopify-Topic` (`orders/create`, `orders/updated`, `fulfillments/create`,
`fulfillments/update`, ...) and `X-Shopify-Hmac-Sha256`: base64 of the HMAC-SHA256 of the raw body,
keyed with the app's client secret (or, for webhooks made in the shop's admin, the key it shows there).
Deliveries may come twice and out of order; `X-Shopify-Webhook-Id` is the same on a retry.
"""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from livemap.domain.messages import MAX_LAT, Consents, Customer
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

PLATFORM = "shopify"
#: Topics whose payload is the order itself.
ORDER_TOPICS = frozenset(
    {
        "orders/create",
        "orders/updated",
        "orders/paid",
        "orders/fulfilled",
        "orders/partially_fulfilled",
        "orders/cancelled",
    }
)
FULFILLMENT_TOPICS = frozenset({"fulfillments/create", "fulfillments/update"})
_DEAD_FULFILLMENT = frozenset({"cancelled", "error", "failure"})

#: Shopify's statuses -> livemap stages (a store's `status_map` overrides each). An order's statuses are,
#: most telling first: `cancelled` (cancelled_at), its newest fulfillment's `shipment_status`, then
#: `fulfilled` (a successful fulfillment), `fulfillment_status`, `financial_status`.
STAGES: dict[str, Targets] = {
    # financial_status
    "pending": (Stage.RECEIVED,),
    "authorized": (Stage.PROCESSING,),
    "partially_paid": (Stage.PROCESSING,),
    "paid": (Stage.PROCESSING,),
    "partially_refunded": (),
    "refunded": (Stage.RETURNED, Stage.CANCELLED),
    "voided": (Stage.CANCELLED,),
    # fulfillment_status
    "partial": (Stage.PROCESSING,),
    "fulfilled": (Stage.SHIPPED,),
    "restocked": (),
    "cancelled": (Stage.CANCELLED,),
    # a fulfillment's shipment_status (carrier tracking)
    "label_printed": (Stage.SHIPPED,),
    "label_purchased": (Stage.SHIPPED,),
    "confirmed": (Stage.SHIPPED,),
    "ready_for_pickup": (Stage.SHIPPED,),
    "in_transit": (Stage.SHIPPED,),
    "out_for_delivery": (Stage.SHIPPED,),  # or the store's custom stage `out_for_delivery`, when it has one
    "attempted_delivery": (Stage.FAILED_ATTEMPT, Stage.SHIPPED),
    "delivered": (Stage.DELIVERED,),
    "failure": (),  # the carrier's tracking failed, not the delivery
}


class ShopifyAddress(msgspec.Struct):
    """A shipping or billing address; Shopify adds `latitude`/`longitude` when it geocoded it."""

    first_name: str | None = None
    last_name: str | None = None
    name: str | None = None
    company: str | None = None
    address1: str | None = None
    address2: str | None = None
    city: str | None = None
    province: str | None = None
    province_code: str | None = None
    zip: str | None = None
    country: str | None = None
    country_code: str | None = None
    phone: str | None = None
    latitude: float | str | None = None
    longitude: float | str | None = None

    def full_name(self) -> str:
        return clean(f"{self.first_name or ''} {self.last_name or ''}") or clean(self.name) or clean(self.company)

    def address(self) -> Address:
        lat, lon = _coordinate(self.latitude), _coordinate(self.longitude)
        if (
            lat is None
            or lon is None
            or (lat == 0 and lon == 0)
            or not (-MAX_LAT <= lat <= MAX_LAT and -180 <= lon <= 180)
        ):
            lat = lon = None  # 0,0 is Shopify's "not geocoded"
        return Address(
            street=tuple(s for s in (clean(self.address1), clean(self.address2)) if s),
            city=clean(self.city),
            region=clean(self.province_code) or clean(self.province),
            postcode=clean(self.zip),
            country=clean(self.country_code) or clean(self.country),
            lat=lat,
            lon=lon,
        )


def _coordinate(value: float | str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


class MarketingConsent(msgspec.Struct):
    state: str | None = None  # subscribed, not_subscribed, unsubscribed, pending, redacted, invalid


class ShopifyCustomer(msgspec.Struct):
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    email_marketing_consent: MarketingConsent | None = None
    sms_marketing_consent: MarketingConsent | None = None

    def consents(self, contact: Customer, accepts_marketing: bool | None) -> Consents | None:
        """What the customer agreed to at checkout, for the contacts the order has.

        Only a "yes" is taken: shipping notices are transactional, so a customer who declined
        marketing still gets the store's default for them (email on, SMS opt-in).
        """
        email_yes = accepts_marketing or _subscribed(self.email_marketing_consent)
        sms_yes = _subscribed(self.sms_marketing_consent)
        email = True if email_yes and contact.email else None
        sms = True if sms_yes and contact.phone else None
        return Consents(email=email, sms=sms) if email or sms else None


def _subscribed(consent: MarketingConsent | None) -> bool:
    return consent is not None and consent.state == "subscribed"


class ShopifyFulfillment(msgspec.Struct):
    """A fulfillment (a shipment of some of an order's items), as `fulfillments/*` deliver it."""

    id: PlatformId
    order_id: PlatformId
    status: str | None = None  # pending, open, success, cancelled, error, failure
    shipment_status: str | None = None  # the carrier's: in_transit, out_for_delivery, delivered, ...
    tracking_company: str | None = None
    tracking_number: str | None = None
    tracking_numbers: list[str] = []
    updated_at: str | None = None

    def statuses(self) -> list[str]:
        if (self.status or "") in _DEAD_FULFILLMENT:
            return []
        found = [self.shipment_status] if self.shipment_status else []
        return [*found, "fulfilled"] if self.status == "success" else found

    def tracking(self) -> str | None:
        return clean(self.tracking_number) or next((clean(t) for t in self.tracking_numbers if clean(t)), None)


class ShopifyOrder(msgspec.Struct):
    """A Shopify order as `orders/*` webhooks deliver it (the fields livemap reads)."""

    id: PlatformId
    name: str | None = None  # "#1001"
    order_number: PlatformId | None = None  # 1001
    email: str | None = None
    contact_email: str | None = None
    phone: str | None = None
    customer: ShopifyCustomer | None = None
    buyer_accepts_marketing: bool | None = None
    shipping_address: ShopifyAddress | None = None
    billing_address: ShopifyAddress | None = None
    financial_status: str | None = None
    fulfillment_status: str | None = None
    cancelled_at: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    fulfillments: list[ShopifyFulfillment] = []


def order_incoming(order: ShopifyOrder) -> Incoming:
    """What livemap takes from a Shopify order: shipping address (else billing), contact, statuses, tracking."""
    number = str(order.order_number) if order.order_number is not None else (order.name or str(order.id))
    ship, bill, cust = order.shipping_address, order.billing_address, order.customer or ShopifyCustomer()
    address = ship.address() if ship else None
    if (address is None or address.empty) and bill:
        address = bill.address()
    name = (
        (ship.full_name() if ship else "")
        or clean(f"{cust.first_name or ''} {cust.last_name or ''}")
        or (bill.full_name() if bill else "")
    )
    email = order.email or order.contact_email or cust.email
    phone = (ship.phone if ship else None) or order.phone or cust.phone or (bill.phone if bill else None)
    statuses = ["cancelled"] if order.cancelled_at else []
    shipments = [f for f in order.fulfillments if (f.status or "") not in _DEAD_FULFILLMENT]
    newest = shipments[-1] if shipments else None
    if newest:
        statuses += newest.statuses()
    statuses += [s for s in (order.fulfillment_status, order.financial_status) if s]
    contact = customer(name, email, phone, f"Order {number}")
    return Incoming(
        platform=PLATFORM,
        external_id=str(order.id),
        number=order_id(number, f"shopify-{order.id}"),
        statuses=statuses,
        customer=contact,
        subscriptions=cust.consents(contact, order.buyer_accepts_marketing),
        address=address,
        updated_at=epoch_ms(order.updated_at),
        placed_at=epoch_ms(order.created_at),
        tracking_number=newest.tracking() if newest else None,
        carrier=(clean(newest.tracking_company) or None) if newest else None,
    )


def fulfillment_incoming(fulfillment: ShopifyFulfillment) -> Incoming:
    """A fulfillment updates its order's stage and tracking details (it never creates the order)."""
    return Incoming(
        platform=PLATFORM,
        external_id=str(fulfillment.order_id),
        number=f"shopify-{fulfillment.order_id}",
        statuses=fulfillment.statuses(),
        tracking_number=fulfillment.tracking(),
        carrier=clean(fulfillment.tracking_company) or None,
    )


async def webhook(request: Request) -> Response:
    """`POST /integrations/shopify/{store}`: a Shopify webhook delivery."""
    sid, settings = await store_settings(request)
    body = await read_body(request)
    secret, status_map = configured(settings.integrations.shopify, PLATFORM)
    check_signature(body, secret, request.headers.get("x-shopify-hmac-sha256"), "X-Shopify-Hmac-Sha256")
    topic = request.headers.get("x-shopify-topic", "")
    if topic in ORDER_TOPICS:
        incoming = order_incoming(decode(body, ShopifyOrder))
        return await apply(request, sid, settings, incoming, defaults=STAGES, status_map=status_map)
    if topic in FULFILLMENT_TOPICS:
        incoming = fulfillment_incoming(decode(body, ShopifyFulfillment))
        return await apply(request, sid, settings, incoming, defaults=STAGES, status_map=status_map, create=False)
    return respond(IntegrationResult("ignored", detail=f"topic {topic!r} is not an order or fulfillment topic"))
