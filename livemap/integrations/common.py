"""What the shop integrations share: signed bodies, status -> stage, and the idempotent order upsert.

Every delivery of a platform's order is applied under a per-order Redis lock (platforms send
`created` and `updated` for one order within milliseconds, in parallel and in any order), as an
upsert: the first delivery that names an order creates it, later ones update it, and a delivery that
changes nothing (a retry, a duplicate) is answered `unchanged`. Stages only move along the store's
stage machine; a status that would move the order backwards or sideways is acknowledged (200) and
ignored, so a platform does not retry it forever, and the order keeps the stage livemap gave it.
Errors are kept for what a retry could fix or a person must: WooCommerce never retries a failed
delivery (woocommerce/woocommerce#28628) and disables a webhook after repeated failures.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal, TypeVar

import msgspec
from redis.exceptions import LockError
from starlette.requests import Request
from starlette.responses import Response

from livemap.domain.clock import now_ms
from livemap.domain.messages import MAX_FUTURE_MS, MIN_TS_MS, Consents, Customer, NewOrder, Point
from livemap.domain.records import Conflict, NotFound, Order, text
from livemap.domain.stages import DEFAULT_PIPELINE, EXCEPTIONS, IllegalTransition, StageMachine, UnknownStage
from livemap.domain.storesettings import Integration, StoreSettings
from livemap.integrations.geocode import Address, Geocoding
from livemap.services import services
from livemap.storage.repository import Repository
from livemap.web import bodies
from livemap.web.errors import ApiError, json_response, not_found

log = logging.getLogger("livemap.integrations")
S = TypeVar("S", bound=msgspec.Struct)
_json = msgspec.json.Encoder()

#: Largest webhook body read (a big order with hundreds of line items is well under it).
MAX_BODY = 1024 * 1024
#: A `status_map` value that makes a status change nothing.
IGNORE = "ignore"
#: The stages a status moves an order to, tried in order (the first legal one wins); () ignores it.
Targets = tuple[str, ...]

_ID_CHARS = re.compile(r"[^A-Za-z0-9._:-]+")
_SPACES = re.compile(r"\s+")


class IntegrationResult(msgspec.Struct, omit_defaults=True):
    """What livemap did with one webhook delivery."""

    result: Literal["created", "updated", "unchanged", "ignored", "ping"]
    order_id: str | None = None
    stage: str | None = None
    #: Why a delivery (or part of it) was ignored: an unmapped status, an illegal transition, ...
    detail: str | None = None


@dataclass(slots=True)
class Incoming:
    """One platform's order (or an update of it), normalized: what livemap takes from it."""

    platform: str  # "woocommerce" | "shopify"
    external_id: str  # the platform's own order id (the idempotency key)
    number: str  # the order number the customer sees: the store's order id in livemap
    statuses: Sequence[str]  # the platform's statuses, most telling first (see `resolve`)
    customer: Customer | None = None
    address: Address | None = None
    updated_at: int | None = None  # epoch ms of the platform's last change (orders only)
    placed_at: int | None = None  # epoch ms the customer ordered (the shop's creation time): analytics' day
    tracking_number: str | None = None
    carrier: str | None = None
    #: Consent the customer gave at checkout, where the platform records it (for contacts the order has).
    subscriptions: Consents | None = None


def respond(result: IntegrationResult) -> Response:
    return json_response(result)


# --- request checks ------------------------------------------------------------------------------


async def read_body(request: Request) -> bytes:
    """The raw body (the signature covers its exact bytes), at most MAX_BODY (413 beyond)."""
    return await bodies.read(request, MAX_BODY)


async def store_settings(request: Request) -> tuple[str, StoreSettings]:
    """The path's store and its settings; 404 for a store that does not exist."""
    sid: str = request.path_params["store"]
    try:
        return sid, await services(request).repo.settings(sid)
    except NotFound:
        raise not_found(f"store {sid} not found") from None


def configured(integration: Integration | None, platform: str) -> tuple[str, Mapping[str, str]]:
    """(secret, status_map) of a set-up integration; 409 `not_configured` when the store has no secret for it."""
    if integration is None or not integration.secret:
        raise ApiError(
            409,
            "not_configured",
            f"the store has no {platform} secret: set integrations.{platform}.secret with PATCH /api/store",
        )
    return integration.secret, integration.status_map


def signature(body: bytes, secret: str) -> str:
    """What both platforms send: base64 of the HMAC-SHA256 of the raw body, keyed with the shared secret."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def check_signature(body: bytes, secret: str, given: str | None, header: str) -> None:
    """401 `bad_signature` unless `given` is the body's signature (compared in constant time)."""
    if not given or not hmac.compare_digest(signature(body, secret).encode(), given.strip().encode()):
        raise ApiError(401, "bad_signature", f"missing or wrong {header}: the body is not signed with the store secret")


def decode(body: bytes, kind: type[S]) -> S:
    """The signed payload as `kind`; 422 when it is not what the platform documents."""
    try:
        return msgspec.json.decode(body, type=kind)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ApiError(422, "invalid_payload", f"not a {kind.__name__} payload: {exc}") from None


# --- mapping helpers -----------------------------------------------------------------------------


def clean(value: str | None) -> str:
    return _SPACES.sub(" ", value or "").strip()


#: The platforms' numeric ids are 64-bit database keys; a larger number is not one of theirs.
PlatformId = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]


def order_id(number: str, fallback: str) -> str:
    """The store's order id for a platform's order number ("#1001" -> "1001"); `fallback` if nothing is left."""
    oid = _ID_CHARS.sub("-", clean(number)).lstrip("#._:-")[:64]
    return oid or fallback


def customer(name: str, email: str | None, phone: str | None, fallback_name: str) -> Customer:
    """A valid Customer from what the shop has: a malformed email or phone is left out, not fatal."""
    doc: dict[str, str] = {"name": clean(name)[:200] or fallback_name}
    for field, value in (("email", clean(email)), ("phone", clean(phone))):
        if value:
            try:
                msgspec.convert({"name": "x", field: value}, Customer)
            except msgspec.ValidationError:
                log.info("ignoring a malformed customer %s from the shop", field)
                continue
            doc[field] = value
    return msgspec.convert(doc, Customer)


def _plausible(at: int | None) -> int | None:
    """A shop's order time if it is one an order may carry (not before 2001, not in the future); else now."""
    return at if at is not None and MIN_TS_MS <= at <= now_ms() + MAX_FUTURE_MS else None


def epoch_ms(value: str | None) -> int | None:
    """An ISO 8601 time from a platform as epoch ms (a time without offset is UTC, as WooCommerce's `_gmt`)."""
    if not value:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return int((at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp() * 1000)


def resolve(
    statuses: Sequence[str], defaults: Mapping[str, Targets], status_map: Mapping[str, str], machine: StageMachine
) -> tuple[str, Targets] | None:
    """The first status that moves the order somewhere, and where.

    Per status: the store's `status_map`, else a custom stage of the store with that name (a plugin's
    `out-for-delivery` status -> custom stage `out_for_delivery`), else the platform's defaults, else
    a default stage with that name (a plugin's `delivered`).
    """
    custom = set(machine.known) - set(DEFAULT_PIPELINE) - set(EXCEPTIONS)
    for status in statuses:
        slug = status.lower().replace("-", "_")
        if status in status_map:
            value = status_map[status]
            targets: Targets = () if value in ("", IGNORE) else (value,)
        elif slug in custom:
            targets = (slug,)
        elif status in defaults:
            targets = defaults[status]
        elif slug in machine.known:
            targets = (slug,)
        else:
            targets = ()
        if targets:
            return status, targets
    return None


# --- the upsert ----------------------------------------------------------------------------------


async def apply(
    request: Request,
    sid: str,
    settings: StoreSettings,
    incoming: Incoming,
    *,
    defaults: Mapping[str, Targets],
    status_map: Mapping[str, str],
    create: bool = True,
    writeback: bool = False,
) -> Response:
    """Create or update the store's order from `incoming`, under the order's lock; 200 with what happened.

    `writeback`: an order this delivery creates gets its tracking link written back to the shop.
    """
    store = services(request).repo
    geocoding: Geocoding = request.app.state.geocoding
    lock = store.redis.lock(
        store.keys.external_order_lock(sid, incoming.platform, incoming.external_id),
        timeout=geocoding.timeout_s + 30,  # expires even if this process dies holding it
        sleep=0.05,
        blocking_timeout=geocoding.timeout_s + 5,
    )
    if not await lock.acquire():
        raise ApiError(503, "busy", "another delivery of this order is being applied; try again")
    try:
        upsert = _Upsert(store, geocoding, sid, settings.machine(), incoming, writeback)
        result = await upsert.run(defaults, status_map, create)
    finally:
        with contextlib.suppress(LockError):  # expired meanwhile: nothing to release
            await lock.release()
    # Ignored statuses are routine (a shop lagging behind livemap's own drivers), not warnings.
    log.info(
        "%s order %s (store %s): %s%s",
        incoming.platform,
        incoming.external_id,
        sid,
        result.result,
        f" ({result.detail})" if result.detail else "",
    )
    return respond(result)


class _Upsert:
    def __init__(
        self,
        store: Repository,
        geocoding: Geocoding,
        sid: str,
        machine: StageMachine,
        incoming: Incoming,
        writeback: bool,
    ):
        self.store, self.geocoding, self.sid, self.machine, self.incoming = store, geocoding, sid, machine, incoming
        self.writeback = writeback
        self.notes: list[str] = []

    async def run(
        self, defaults: Mapping[str, Targets], status_map: Mapping[str, str], create: bool
    ) -> IntegrationResult:
        inc, store = self.incoming, self.store
        links = store.keys.store_external_orders(self.sid, inc.platform)
        linked = await store.redis.hget(links, inc.external_id)
        if linked is None and not create:
            return IntegrationResult("ignored", detail=f"{inc.platform} order {inc.external_id} is unknown here")
        oid = text(linked) if linked is not None else inc.number
        order = await self._order(oid)
        created = False
        if linked is None:
            if order is None:
                order, created = await self._create(oid)
            if not order["source"]:  # the store created this number itself (REST): the shop's deliveries update it
                await store.set_order_fields(order.tracking_id, {"source": inc.platform, "ext_id": inc.external_id})
            await store.redis.hset(links, inc.external_id, oid)
        elif order is None:
            raise ApiError(409, "conflict", f"order {oid} is linked to this {inc.platform} order but does not exist")
        elif inc.updated_at and order["ext_updated"] and inc.updated_at < int(order["ext_updated"]):
            return IntegrationResult("ignored", oid, order.stage, "older than the last delivery applied")
        changed = False if created else await self._update_fields(order)
        moved = False
        resolved = resolve(inc.statuses, defaults, status_map, self.machine)
        if resolved is None:
            if inc.statuses:
                self.notes.append(f"status {', '.join(inc.statuses)} changes no stage")
        else:
            moved = await self._move(oid, order.stage, *resolved)
        final = await store.store_order(self.sid, oid)
        detail = "; ".join(self.notes) or None
        if created:
            return IntegrationResult("created", oid, final.stage, detail)
        if changed or moved:
            return IntegrationResult("updated", oid, final.stage, detail)
        return IntegrationResult("ignored" if detail else "unchanged", oid, final.stage, detail)

    async def _order(self, oid: str) -> Order | None:
        try:
            return await self.store.store_order(self.sid, oid)
        except NotFound:
            return None

    async def _create(self, oid: str) -> tuple[Order, bool]:
        inc = self.incoming
        point, status = await self.geocoding.locate(inc.address)
        shown = inc.address.display()[:500] if inc.address else ""
        body = NewOrder(
            id=oid,
            customer=inc.customer or customer("", None, None, f"Order {oid}"),
            destination=Point(point[0], point[1]) if point else None,
            address=shown or None,
            tracking_number=(inc.tracking_number or "")[:100] or None,
            carrier=(inc.carrier or "")[:100] or None,
            subscriptions=inc.subscriptions,
            placed_at=_plausible(inc.placed_at),
        )
        extra = {
            "source": inc.platform,
            "ext_id": inc.external_id,
            "ext_address": shown,
            "ext_updated": str(inc.updated_at or ""),
            "geocode": status,
        }
        try:
            return await self.store.create_order(self.sid, body, extra, writeback=self.writeback), True
        except Conflict:  # the store created that number through the REST API a moment ago: update it
            return await self.store.store_order(self.sid, oid), False

    async def _update_fields(self, order: Order) -> bool:
        """Apply the delivery's contact, address and tracking details; True when anything changed."""
        inc = self.incoming
        fields: dict[str, str] = {}
        if inc.customer is not None and inc.customer != order.customer:
            fields["customer"] = _json.encode(inc.customer).decode()
        if inc.address is not None:
            shown = inc.address.display()[:500]
            moved = bool(order["ext_address"]) and order["ext_address"] != shown
            if not order["ext_address"] and order["destination"]:
                fields["ext_address"] = shown  # an order the store created itself keeps its own destination
            elif order.driver:
                if moved:  # the driver already has this stop (and its route): a new address would not reach them
                    self.notes.append("address change not applied: the order is assigned to a driver")
            elif moved or not order["destination"]:
                # A new address, or none found yet (the geocoder was down, or did not know it): geocode.
                point, status = await self.geocoding.locate(inc.address)
                fields |= {
                    "address": shown,
                    "ext_address": shown,
                    "destination": _json.encode([point[0], point[1]]).decode() if point else "",
                    "geocode": status,
                }
        if inc.tracking_number:
            fields["tracking_number"] = inc.tracking_number[:100]
        if inc.carrier:
            fields["carrier"] = inc.carrier[:100]
        if inc.updated_at and (not order["ext_updated"] or inc.updated_at > int(order["ext_updated"])):
            fields["ext_updated"] = str(inc.updated_at)
        fields = {f: v for f, v in fields.items() if order[f] != v}
        await self.store.set_order_fields(order.tracking_id, fields)
        # ext_* are livemap's own bookkeeping: updating only them is not a change the store would see.
        return any(not f.startswith("ext_") for f in fields)

    async def _move(self, oid: str, current: str, status: str, targets: Targets) -> bool:
        """Move the order to the first legal stage of `targets`; False (and a note) when none is."""
        if current in targets:
            return False
        for target in targets:
            try:
                self.machine.check(current, target)
                await self.store.change_stage(self.sid, oid, target, None)
            except (IllegalTransition, UnknownStage):
                continue
            return True
        self.notes.append(f"status {status!r} -> {' or '.join(targets)} is not allowed from {current!r}")
        return False
