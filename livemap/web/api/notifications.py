"""`/api/store/notifications/...`: the settings page's look at the store's customer messages.

`preview` words a message for a sample order exactly as the worker does (`notify.templates.render`), with
the store's saved settings and, over its saved wording, wording the store has not saved yet. `test` sends
that message now, marked as a test, to the store's own address or phone through its own SMTP server or SMS
provider: not through the outbox (the page waits for the answer), but as the worker sends, to vetted
addresses only (LIVEMAP_OUTBOUND_ALLOW) and within LIVEMAP_WORKER_TIMEOUT_S. Each test reaches a server of
the store's choice and an SMS costs it money, so a store gets TEST_SENDS a minute, counted in Redis (every
process shares the count).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from livemap.domain.clock import now_ms
from livemap.domain.i18n import Lang
from livemap.domain.messages import (
    Customer,
    NotificationPreview,
    NotificationSent,
    NotificationTest,
    NotificationWords,
)
from livemap.domain.records import Order
from livemap.domain.returns import HISTORY_PREFIX, ReturnStatus
from livemap.domain.storesettings import StoreSettings
from livemap.logs import redact
from livemap.notify import email as email_channel
from livemap.notify import links, sms
from livemap.notify.base import DeliveryError, Notice
from livemap.notify.policy import tracking_url
from livemap.notify.templates import Message, render
from livemap.outbound.connect import guarded_client
from livemap.services import Services, services
from livemap.storage import attempts
from livemap.web import auth, bodies, sessions
from livemap.web.errors import ApiError, json_response

log = logging.getLogger("livemap.notify")

#: Test messages a store may send per TEST_WINDOW_S seconds.
TEST_SENDS = 5
TEST_WINDOW_S = 60
#: What a test message's subject and SMS start with.
TEST_MARK = "[Test] "
#: The sample order every preview and test is worded for (its tracking id and token open nothing).
SAMPLE_NUMBER, SAMPLE_NAME, SAMPLE_EMAIL, SAMPLE_TID = "1001", "Ana Silva", "ana.silva@example.com", "sample"
#: The sample's ETA, this long from now.
_SAMPLE_ETA_MS = {"arriving": 8 * 60_000, "delayed": 25 * 60_000}
_RETURN_STATUSES = tuple(status.value for status in ReturnStatus)
#: The sample event of a driver close to collecting a return: `arriving` on the order's pickup leg.
RETURN_ARRIVING = "return_arriving"


@sessions.allows_owner
async def preview(request: Request) -> Response:
    """The message a customer would get for `event` in `lang`, for a sample order; nothing is sent or saved."""
    principal = await auth.require(request, "store")
    body = await bodies.json(request, NotificationPreview)
    store = await services(request).repo.settings(principal.store_id)
    if body.texts:
        saved = store.notifications.texts
        texts = saved | {body.lang: saved.get(body.lang, {}) | body.texts}
        notifications = msgspec.structs.replace(store.notifications, texts=texts)
        store = msgspec.structs.replace(store, notifications=notifications)
    words = render(_sample(request, principal.store_id, store, body.lang, body.event))
    return json_response(NotificationWords(words.subject, words.text, words.sms))


@sessions.allows_owner
async def send_test(request: Request) -> Response:
    """Send the preview's message now, marked as a test, by the store's email or SMS to `to`."""
    principal = await auth.require(request, "store")
    body = await bodies.json(request, NotificationTest)
    svc = services(request)
    store = await svc.repo.settings(principal.store_id)
    contact = {"email": body.to} if body.channel == "email" else {"phone": body.to}
    customer = Customer(name=SAMPLE_NAME, **contact)
    notice = _sample(request, principal.store_id, store, body.lang, body.event, customer)
    _check_configured(store, body.channel)
    wait_s = await _spend(svc, principal.store_id)
    if wait_s is not None:
        return _limited(wait_s)
    words = render(notice)
    marked = Message(TEST_MARK + words.subject, words.text, TEST_MARK + words.sms)
    timeout_s = svc.settings.worker_timeout_s
    try:
        async with asyncio.timeout(timeout_s):
            await _send(svc, notice, marked, body)
    except DeliveryError as exc:
        reason = redact(str(exc))
    except TimeoutError:
        reason = f"no answer within {timeout_s:g} s"
    else:
        log.info("test %s of store %s sent (%s)", body.channel, principal.store_id, body.event)
        return json_response(NotificationSent(sent=True, channel=body.channel, to=body.to))
    log.info("test %s of store %s failed: %s", body.channel, principal.store_id, reason)
    raise ApiError(502, "send_failed", reason)


def _event(store: StoreSettings, event: str) -> tuple[str, str, dict[str, Any]]:
    """(kind, key, data) of a sample `event`, as the outbox would carry it; 422 `unknown_event` (with `known`)."""
    if event in _SAMPLE_ETA_MS:
        return event, event, {"type": event, "eta_at": now_ms() + _SAMPLE_ETA_MS[event]}
    if event == RETURN_ARRIVING:  # `arriving` on a return's pickup leg (see _sample)
        return "arriving", "arriving", {"type": "arriving", "eta_at": now_ms() + _SAMPLE_ETA_MS["arriving"]}
    status = event.removeprefix(HISTORY_PREFIX)
    if event.startswith(HISTORY_PREFIX) and status in _RETURN_STATUSES:
        return "return", "return", {"type": "return", "status": status, "note": None}
    machine = store.machine()
    if event in machine.known:
        return "stage", event, {"type": "stage", "stage": event, "note": None}
    known = [*machine.known, *_SAMPLE_ETA_MS, *(HISTORY_PREFIX + s for s in _RETURN_STATUSES), RETURN_ARRIVING]
    raise ApiError(422, "unknown_event", f"unknown event {event!r}; known: {', '.join(known)}", known=known)


def _sample(
    request: Request, sid: str, store: StoreSettings, lang: Lang, event: str, customer: Customer | None = None
) -> Notice:
    """The notice of `event` for the sample order, with links on this server's public base."""
    kind, key, data = _event(store, event)
    svc = services(request)
    base = svc.base_url(request)
    customer = customer or Customer(name=SAMPLE_NAME, email=SAMPLE_EMAIL)
    raw = {"id": SAMPLE_NUMBER, "tid": SAMPLE_TID, "customer": msgspec.json.encode(customer).decode(), "locale": lang}
    if event == RETURN_ARRIVING:
        raw["return_leg"] = "1"  # a driver on the way to collect the sample order's return
    order = Order(raw)
    return Notice(
        event_id=f"test-{secrets.token_hex(8)}",  # its own Message-ID: a mail system keeps every test
        key=key,
        kind=kind,
        created_at=now_ms(),
        store_id=sid,
        store=store,
        order=order,
        data={"order_id": SAMPLE_NUMBER, "tracking_id": SAMPLE_TID, **data},
        lang=lang,
        tracking_url=tracking_url(base, order, SAMPLE_TID, lang),
        unsubscribe_email=links.link(base, svc.repo.box, SAMPLE_TID, "email"),
        unsubscribe_sms=links.link(base, svc.repo.box, SAMPLE_TID, "sms"),
    )


def _check_configured(store: StoreSettings, channel: str) -> None:
    """409 `channel_not_configured` unless the store says where its email (or SMS) goes."""
    config = store.notifications
    if channel == "email" and not (config.email and config.email.host and config.email.sender):
        raise ApiError(409, "channel_not_configured", "notifications.email needs host and from")
    if channel == "sms" and not (config.sms and config.sms.url):
        raise ApiError(409, "channel_not_configured", "notifications.sms needs url")


async def _spend(svc: Services, sid: str) -> int | None:
    """Count one test of the store; None while within TEST_SENDS, else the seconds until the window ends."""
    key = svc.repo.keys.notify_tests(sid)
    if await attempts.take(svc.repo.redis, key, TEST_WINDOW_S) <= TEST_SENDS:
        return None
    return max(1, int(await svc.repo.redis.ttl(key)))


def _limited(wait_s: int) -> Response:
    error = ApiError(429, "rate_limited", f"at most {TEST_SENDS} test messages a minute; try again in {wait_s} s")
    response = json_response(error.body(), 429)
    response.headers["Retry-After"] = str(wait_s)
    return response


async def _send(svc: Services, notice: Notice, words: Message, body: NotificationTest) -> None:
    """Hand the message to the store's SMTP server or SMS provider, vetting its addresses as the worker does."""
    config = notice.store.notifications
    if body.channel == "email":
        await email_channel.send(notice, words, config.email, body.to, svc.outbound)
        return
    headers = {"User-Agent": "livemap-notify/1"}
    async with guarded_client(svc.outbound, svc.settings.worker_timeout_s, headers=headers) as client:
        await sms.send(client, notice, words.sms, config.sms, body.to)


routes = [
    Route("/api/store/notifications/preview", preview, methods=["POST"]),
    Route("/api/store/notifications/test", send_test, methods=["POST"]),
]
