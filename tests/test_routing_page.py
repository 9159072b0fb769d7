"""Issue 20 in real Chromium: the tracking page draws a leg's road route, and redraws it when the driver
leaves it and the router sends a new one (tests/streets.py's streets, the embedded router)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest
from streets import A, B, C, E, F, near, write_osm

from conftest import (
    PHONE,
    RedisTarget,
    Server,
    customer_socket,
    driver_socket,
    new_shop,
    now_ms,
    open_page,
    server_env,
    skip_without_chromium,
    wait,
)

pytestmark = pytest.mark.browser
skip_without_chromium()

from playwright.async_api import Browser, Page  # noqa: E402 - only with a browser present

# The page's route line, read from Leaflet: every polyline on the map that is not a circle marker.
_ROUTE = """() => {
  const cfg = JSON.parse(document.getElementById("lm-config").textContent);
  const out = [];
  window[cfg.map].eachLayer((layer) => {
    if (layer instanceof L.Polyline) out.push(layer.getLatLngs().map((p) => [p.lat, p.lng]));
  });
  return out;
}"""


@pytest.fixture(scope="module")
def routed(redis_target: RedisTarget, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("routed-page")
    streets = write_osm(data / "streets.osm")
    env = server_env(redis_target, data, LIVEMAP_OSM_PBF=str(streets), LIVEMAP_REROUTE_INTERVAL_S="0")
    srv = Server(env, "routed-page")
    yield srv
    srv.stop()


async def drawn(page: Page) -> list[list[list[float]]]:
    return list(await page.evaluate(_ROUTE))


async def drawn_through(page: Page, corner: tuple[float, float]) -> list[list[float]]:
    """The page's one route line once it passes `corner` (polled: the page's CSP forbids
    wait_for_function's string evaluation)."""
    deadline = time.monotonic() + wait(10)
    while True:
        lines = await drawn(page)
        if len(lines) == 1 and any(near((p[0], p[1]), corner) for p in lines[0]):
            return lines[0]
        assert time.monotonic() < deadline, f"the page never drew a route through {corner}: {lines}"
        await asyncio.sleep(0.1)


async def test_the_page_redraws_the_route_the_router_sends(
    browser: Browser, http: httpx.AsyncClient, routed: Server
) -> None:
    shop = await new_shop(http, routed)
    await shop.driver("p1")
    order = await shop.order("P1", origin={"lat": A[0], "lon": A[1]}, destination={"lat": C[0], "lon": C[1]})
    assert (await shop.post("/api/orders/P1/assign", {"driver_id": "p1"})).status_code == 200
    assert (await shop.stage("P1", "shipped")).json()["live"]
    customer = await customer_socket(routed, order)
    assert (await customer.recv())["type"] == "snapshot"
    page = await open_page(browser, order["tracking_url"], PHONE)
    await page.wait_for_selector("#lm-conn[data-state=live]", timeout=wait(10) * 1000)
    [straight] = await drawn(page)
    assert len(straight) == 2  # origin to door, as the order came
    driver = await driver_socket(routed, shop.drivers["p1"])  # its session asks for the road route
    await customer.recv_type("route", timeout=20)
    road = await drawn_through(page, B)
    assert len(road) > 2
    t0 = now_ms() - 30_000
    for i in range(5):  # off to E: the router sends a route from there
        await driver.send({"lat": E[0], "lon": E[1] + i * 0.00001, "ts": t0 + i * 2000, "accuracy": 5, "seq": i})
        await driver.recv_type("ack")
    await customer.recv_type("route", timeout=20)
    again = await drawn_through(page, F)
    assert not any(near((p[0], p[1]), B) for p in again)  # the old route is gone, not kept beside
    await page.close()
    await driver.close()
    await customer.close()
