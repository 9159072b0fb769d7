"""The driver app in real headless Chromium (phone viewport, emulated GPS) against a real server and real sockets."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from conftest import (
    ARTIFACTS,
    PHONE,
    Server,
    Shop,
    along,
    customer_socket,
    open_page,
    png,
    skip_without_chromium,
    wait,
)

pytestmark = pytest.mark.browser
skip_without_chromium()

from playwright.async_api import Browser, Page, WebSocket  # noqa: E402 - only with a browser present

#: Customers get at most one location per second of fix time: space the emulated fixes further apart.
FIX_GAP_S = 1.1
_ERRORS: dict[int, list[str]] = {}  # per page: uncaught exceptions and CSP refusals


def geo(fraction: float) -> dict[str, float]:
    lat, lon = along(fraction)
    return {"latitude": lat, "longitude": lon, "accuracy": 6}


async def driver_page(browser: Browser, server: Server, path: str, frames: list[list[str]] | None = None) -> Page:
    """The driver app on a phone that lets it use (emulated) GPS; `frames` collects each socket's sent messages."""
    # A phone's browser grants the screen wake lock by itself; listing permissions here denies the rest.
    page = await browser.new_page(viewport=PHONE, permissions=["geolocation", "screen-wake-lock"], geolocation=geo(0.1))

    def watch(ws: WebSocket) -> None:
        sent: list[str] = []
        assert frames is not None
        frames.append(sent)
        ws.on("framesent", lambda payload: sent.append(payload if isinstance(payload, str) else payload.decode()))

    if frames is not None:
        page.on("websocket", watch)
    # Uncaught exceptions and CSP refusals fail the test at its end (see `no_errors`).
    errors = _ERRORS.setdefault(id(page), [])
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None)
    await page.route("**/*", lambda route: route.continue_() if "127.0.0.1" in route.request.url else route.abort())
    await page.goto(server.url + path)
    return page


def no_errors(page: Page) -> None:
    assert _ERRORS.pop(id(page)) == []


async def state(page: Page, element_id: str, value: str) -> None:
    """Wait until the status element shows `value` in its data-state."""
    await page.wait_for_function(
        "([id, v]) => document.getElementById(id).dataset.state === v", arg=[element_id, value], timeout=wait(10) * 1000
    )


async def text_of(page: Page, element_id: str, value: str) -> None:
    await page.wait_for_function(
        "([id, v]) => document.getElementById(id).textContent === v", arg=[element_id, value], timeout=wait(10) * 1000
    )


async def test_shift_sends_fixes_buffers_them_offline_and_stops_off_shift(
    browser: Browser, shop: Shop, server: Server
) -> None:
    """On shift, fixes reach the customer; offline they are kept, then sent as one ordered batch; off shift: none."""
    token = await shop.driver("pg1")
    order = await shop.live_order("PG1", "pg1")
    customer = await customer_socket(server, order)
    await customer.recv_type("snapshot")
    frames: list[list[str]] = []
    page = await driver_page(browser, server, f"/driver#token={token}", frames)
    context = page.context

    # Signed in by the link; the token left the address bar (and was never sent to the server in a URL).
    await page.wait_for_selector(f'.dr-stop[data-tracking-id="{order["tracking_id"]}"][data-stage="shipped"]')
    assert await page.evaluate("location.href") == f"{server.url}/driver"
    assert await page.evaluate("localStorage.getItem('livemap.driver.token')") == token
    assert await page.text_content("#dr-name") == "Driver pg1"
    await state(page, "dr-conn", "online")
    await state(page, "dr-gps", "off")

    await page.get_by_role("button", name="Start shift").click()
    await text_of(page, "dr-shift-state", "On shift: sharing your location")
    live = [0.1, 0.15, 0.2]
    got = [await customer.recv_type("location", 10)]  # the position the phone already had
    for fraction in live[1:]:
        await asyncio.sleep(FIX_GAP_S)
        await context.set_geolocation(geo(fraction))
        got.append(await customer.recv_type("location", 10))
    assert [(e["lat"], e["lon"]) for e in got] == [pytest.approx(along(f), abs=1e-6) for f in live]
    await state(page, "dr-gps", "ok")
    await state(page, "dr-wake", "on")  # the screen stays on while on shift
    await text_of(page, "dr-buffered", "0")  # each fix acknowledged
    await page.screenshot(path=str(ARTIFACTS / "driver-on-shift.png"))

    # The network goes: the app drops its socket and keeps the fixes on the phone.
    await context.set_offline(True)
    await state(page, "dr-conn", "offline")
    offline = [0.3, 0.35, 0.4, 0.45]
    for fraction in offline:
        await asyncio.sleep(FIX_GAP_S)
        await context.set_geolocation(geo(fraction))
    await text_of(page, "dr-buffered", str(len(offline)))
    assert await page.is_visible("#dr-offline-note")
    await customer.nothing_within(0.3)
    kept = json.loads(await page.evaluate("localStorage.getItem('livemap.driver.buffer')"))
    assert [f["seq"] for f in kept] == sorted(f["seq"] for f in kept)
    await page.screenshot(path=str(ARTIFACTS / "driver-offline.png"))

    # Back online: a new socket, whose first message is the whole buffer as one batch, oldest first.
    sockets_before = len(frames)
    await context.set_offline(False)
    arrived = [await customer.recv_type("location", 10) for _ in offline]
    assert [(e["lat"], e["lon"]) for e in arrived] == [pytest.approx(along(f), abs=1e-6) for f in offline]
    assert [e["ts"] for e in arrived] == sorted({e["ts"] for e in arrived})  # in fix-time order, none twice
    assert arrived[0]["ts"] > got[-1]["ts"]
    await text_of(page, "dr-flushed", f"Sent {len(offline)} buffered locations")
    await text_of(page, "dr-buffered", "0")
    await state(page, "dr-conn", "online")
    assert len(frames) == sockets_before + 1
    batch = json.loads(frames[-1][0])
    assert isinstance(batch, list) and [(f["lat"], f["lon"]) for f in batch] == [
        pytest.approx(along(f), abs=1e-6) for f in offline
    ]
    assert [f["seq"] for f in batch] == [f["seq"] for f in kept]
    await page.screenshot(path=str(ARTIFACTS / "driver-back-online.png"))

    # End of shift: the GPS watch stops; a move sends nothing and keeps nothing.
    sent_so_far = sum(len(f) for f in frames)
    await page.get_by_role("button", name="End shift").click()
    await text_of(page, "dr-shift-state", "Off shift: your location is not shared")
    await state(page, "dr-gps", "off")
    await state(page, "dr-wake", "off")
    for fraction in (0.5, 0.55):
        await asyncio.sleep(FIX_GAP_S)
        await context.set_geolocation(geo(fraction))
    await customer.nothing_within(1.5)
    assert sum(len(f) for f in frames) == sent_so_far
    assert await page.evaluate("localStorage.getItem('livemap.driver.buffer')") == "[]"
    await page.screenshot(path=str(ARTIFACTS / "driver-off-shift.png"))
    no_errors(page)
    await page.close()
    await customer.close()


async def test_delivery_with_recipient_and_photo_shows_on_the_customer_page(
    browser: Browser, shop: Shop, server: Server
) -> None:
    """Picked up / Delivered buttons change the stops; the recipient and photo appear on the customer's page."""
    token = await shop.driver("pg2")
    order = await shop.live_order("PG2", "pg2")
    second = await shop.order("PG3", address="Calle Palma 123, Asunción")
    await shop.post("/api/orders/PG3/assign", {"driver_id": "pg2"})
    page = await driver_page(browser, server, f"/driver#token={token}")
    pg3 = page.locator(f'.dr-stop[data-tracking-id="{second["tracking_id"]}"]')
    await pg3.get_by_role("button", name="Picked up: Ana").click()
    await page.wait_for_selector(f'.dr-stop[data-tracking-id="{second["tracking_id"]}"][data-stage="shipped"]')
    assert await pg3.locator(".dr-badge").text_content() == "Shipped"
    await page.screenshot(path=str(ARTIFACTS / "driver-stops.png"))
    await page.set_viewport_size({"width": 360, "height": 740})  # the narrowest common phone: nothing overflows
    assert await page.evaluate("document.documentElement.scrollWidth") <= 360
    await page.set_viewport_size(PHONE)

    pg2 = page.locator(f'.dr-stop[data-tracking-id="{order["tracking_id"]}"]')
    await pg2.locator('button[data-action="delivered"]').click()
    dialog = page.locator("#dr-deliver")
    await dialog.wait_for(state="visible")
    await page.fill("#dr-recipient", "Marta Gómez")
    photo: Any = {"name": "door.png", "mimeType": "image/png", "buffer": png(640, 480, (40, 110, 200))}
    await page.set_input_files("#dr-photo", files=[photo])
    await page.screenshot(path=str(ARTIFACTS / "driver-deliver-dialog.png"))
    await dialog.get_by_role("button", name="Confirm delivery").click()
    await page.wait_for_selector(f'.dr-stop[data-tracking-id="{order["tracking_id"]}"][data-stage="delivered"]')
    await dialog.wait_for(state="hidden")
    assert await pg2.locator("button").count() == 0  # nothing left to do at a delivered stop
    kept = (
        await shop.http.get(
            f"{server.url}/api/track/{order['tracking_id']}/proof/photo", params={"t": order["tracking_token"]}
        )
    ).content
    assert kept.startswith(b"\xff\xd8\xff")  # the app sent a downscaled JPEG, not the camera's original

    customer = await open_page(browser, order["tracking_url"], PHONE)
    await customer.wait_for_selector("#lm-proof:not([hidden])", timeout=wait(10) * 1000)
    assert await customer.text_content("#lm-proof-recipient") == "Received by Marta Gómez"
    await customer.wait_for_function(
        "() => { const i = document.getElementById('lm-proof-photo'); return i.complete && i.naturalWidth === 640; }"
    )
    await customer.locator("#lm-proof").scroll_into_view_if_needed()
    await customer.screenshot(path=str(ARTIFACTS / "driver-proof-customer.png"))
    await customer.close()
    no_errors(page)
    await page.close()


async def test_sign_in_with_a_typed_token_and_sign_out(browser: Browser, shop: Shop, server: Server) -> None:
    """A wrong token is refused with a message; the right one opens the app; signing out forgets it."""
    token = await shop.driver("pg3")
    page = await driver_page(browser, server, "/driver")
    await page.wait_for_selector("#dr-signin:not([hidden])")
    await page.get_by_label("Driver token").fill("lmd_wrong")
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_selector("#dr-signin-error:not([hidden])")
    assert "does not work" in (await page.text_content("#dr-signin-error") or "")
    await page.screenshot(path=str(ARTIFACTS / "driver-signin.png"))
    await page.get_by_label("Driver token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_selector("#dr-app:not([hidden])")
    await state(page, "dr-conn", "online")
    assert await page.is_visible("#dr-no-stops")
    width = await page.evaluate("document.documentElement.scrollWidth")
    await page.set_viewport_size({"width": 360, "height": 740})  # the narrowest common phone
    assert await page.evaluate("document.documentElement.scrollWidth") <= 360 and width <= PHONE["width"]
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_selector("#dr-signin:not([hidden])")
    assert await page.evaluate("localStorage.getItem('livemap.driver.token')") is None
    no_errors(page)
    await page.close()


async def test_a_replaced_token_signs_the_app_out_with_a_message(browser: Browser, shop: Shop, server: Server) -> None:
    """The store replaces the driver's token: the open app's socket is closed for good (4401) and the app goes
    back to sign-in saying the token does not work, instead of retrying it for ever."""
    token = await shop.driver("pg4")
    page = await driver_page(browser, server, f"/driver#token={token}")
    await page.wait_for_selector("#dr-app:not([hidden])")
    await state(page, "dr-conn", "online")
    assert (await shop.post("/api/drivers/pg4/token", {})).status_code == 200
    await page.wait_for_selector("#dr-signin:not([hidden])", timeout=wait(10) * 1000)
    await page.wait_for_selector("#dr-signin-error:not([hidden])")
    assert "does not work" in (await page.text_content("#dr-signin-error") or "")
    no_errors(page)
    await page.close()
