"""The customer tracking page in real headless Chromium against a real server."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import (
    ARTIFACTS,
    DESKTOP,
    PHONE,
    RedisTarget,
    Server,
    Shop,
    driver_socket,
    fix,
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Restartable:
    """A server on a fixed port, so a page can reconnect to the same address after a restart."""

    def __init__(self, target: RedisTarget, data: Path) -> None:
        self.env = server_env(target, data)
        self.port = _free_port()
        self.server = self._start()

    def _start(self) -> Server:
        return Server(self.env, "page", port=self.port)

    def stop(self) -> None:
        self.server.stop()

    def start(self) -> None:
        self.server = self._start()


@pytest.fixture(scope="module")
def site(redis_target: RedisTarget, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Restartable]:
    r = Restartable(redis_target, tmp_path_factory.mktemp("page"))
    yield r
    r.server.stop()


async def shipped_order(shop: Shop, oid: str, did: str, **extra: Any) -> dict[str, Any]:
    await shop.driver(did)
    order = await shop.order(oid, **extra)
    await shop.post(f"/api/orders/{oid}/assign", {"driver_id": did})
    await shop.stage(oid, "shipped")
    return order


async def driver_marker(page: Page) -> dict[str, float] | None:
    return await page.evaluate(
        "() => { const m = document.querySelector('.lm-driver'); if (!m) return null;"
        " const r = m.getBoundingClientRect(); return {x: r.x, y: r.y}; }"
    )


async def test_live_page_moves_marker_updates_eta_and_timeline(browser: Browser, site: Restartable) -> None:
    """Pings move the marker and change the ETA text; a stage change updates the timeline; screenshots saved."""
    srv = site.server
    async with httpx.AsyncClient(timeout=wait(20)) as http:
        shop = await new_shop(http, srv)
        order = await shipped_order(shop, "P1", "p1", promised_by=now_ms() + 3_600_000)
        page = await open_page(browser, order["tracking_url"], PHONE, locale="en-US")
        await page.wait_for_selector("#lm-conn[data-state=live]", timeout=wait(10) * 1000)
        assert await page.inner_text("#lm-eta") == "Your order is on its way"
        driver = await driver_socket(srv, shop.drivers["p1"])
        t = now_ms() - 60_000
        await driver.send(fix(0.1, t, 1))
        await driver.recv_type("ack")
        await page.wait_for_selector(".lm-driver", timeout=wait(5) * 1000)
        first_text = await page.inner_text("#lm-eta")
        assert first_text.startswith("Arriving in ")
        before = await driver_marker(page)
        await driver.send(fix(0.97, t + 30_000, 2))
        await driver.recv_type("ack")
        await page.wait_for_function(f"() => document.getElementById('lm-eta').textContent !== {first_text!r}")
        await page.wait_for_timeout(1200)  # the marker glides for ~1 s
        after = await driver_marker(page)
        assert before and after and (abs(after["x"] - before["x"]) + abs(after["y"] - before["y"])) > 20
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "track-phone.png"))
        await page.set_viewport_size(DESKTOP)
        await page.wait_for_timeout(300)
        await page.screenshot(path=str(ARTIFACTS / "track-desktop.png"))
        await shop.stage("P1", "delivered")
        await page.wait_for_selector(".lm-current >> text=Delivered", timeout=wait(5) * 1000)
        assert (await page.inner_text("#lm-eta")).startswith("Delivered at ")
        assert await driver_marker(page) is None  # after delivery: the drop-off point, not the driver
        await driver.close()
        await page.close()


async def test_page_recovers_after_the_server_drops_its_socket(
    browser: Browser, site: Restartable, server: Server
) -> None:
    """Its server goes away: the page says so, reconnects (static/reconnect.js) when it is back on the same
    port, replays what changed meanwhile, and then takes live updates on the new socket again."""
    async with httpx.AsyncClient(timeout=wait(20)) as http:
        shop = await new_shop(http, server)  # the store's own calls go through another process
        order = await shipped_order(shop, "P2", "p2")
        url = order["tracking_url"].replace(server.url, site.server.url)
        page = await open_page(browser, url, PHONE, locale="en-US")
        await page.wait_for_selector("#lm-conn[data-state=live]", timeout=wait(10) * 1000)
        assert await page.evaluate("typeof window.livemapSocket.reconnecting") == "function"
        assert await driver_marker(page) is None  # no fix yet
        site.stop()
        await page.wait_for_selector("#lm-conn[data-state=reconnecting]", timeout=wait(10) * 1000)
        # While the page is cut off: the driver's first fix (through the other process).
        driver = await driver_socket(server, shop.drivers["p2"])
        await driver.send(fix(0.2, now_ms(), 1))
        await driver.recv_type("ack")
        site.start()
        await page.wait_for_selector("#lm-conn[data-state=live]", timeout=wait(40) * 1000)
        await page.wait_for_selector(".lm-driver", timeout=wait(5) * 1000)  # caught up on reconnect
        # Live again: a change made now reaches the page over the new socket.
        assert (await shop.stage("P2", "delivered")).status_code == 200
        await page.wait_for_selector(".lm-current >> text=Delivered", timeout=wait(5) * 1000)
        assert await page.get_attribute("#lm-conn", "data-state") == "live"
        await driver.close()
        await page.close()


async def test_wrong_token_shows_an_error_page(browser: Browser, site: Restartable) -> None:
    """A wrong or missing token gets a 404 page that says so, in the visitor's language, with no order data."""
    async with httpx.AsyncClient(timeout=wait(20)) as http:
        shop = await new_shop(http, site.server)
        order = await shop.order("P3")
        page = await browser.new_page(locale="es-ES")
        response = await page.goto(f"{site.server.url}/track/{order['tracking_id']}?t=wrong")
        assert response is not None and response.status == 404
        assert await page.inner_text("h1") == "Este enlace de seguimiento no funciona"
        assert "P3" not in await page.content()
        await page.close()


async def test_spanish_and_each_template(browser: Browser, site: Restartable) -> None:
    """`?lang=es` shows Spanish; each of the three templates renders its layout (screenshots saved)."""
    async with httpx.AsyncClient(timeout=wait(20)) as http:
        shop = await new_shop(http, site.server)
        order = await shipped_order(shop, "P4", "p4", tracking_number="PY777", carrier="Correo")
        page = await open_page(browser, order["tracking_url"] + "&lang=es", PHONE, locale="en-US")
        await page.wait_for_selector("#lm-conn[data-state=live]", timeout=wait(10) * 1000)
        assert await page.inner_text("#lm-eta") == "Tu pedido está en camino"
        assert await page.inner_text("#lm-status-h") == "Estado del pedido"
        assert await page.evaluate("document.documentElement.lang") == "es"
        await page.close()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for template in ("classic", "compact", "bold"):
            r = await http.patch(
                f"{site.server.url}/api/store", headers=shop.auth, json={"branding": {"template": template}}
            )
            assert r.status_code == 200
            page = await open_page(browser, order["tracking_url"], PHONE, locale="pt-BR")
            await page.wait_for_selector("#lm-conn[data-state=live]", timeout=wait(10) * 1000)
            assert await page.evaluate("document.body.className") == f"tpl-{template}"
            assert await page.inner_text("#lm-eta") == "Seu pedido está a caminho"
            panel = await page.evaluate(
                "(() => { const r = document.querySelector('.lm-panel').getBoundingClientRect();"
                " return {w: r.width, h: r.height}; })()"
            )
            assert panel["w"] > 300 and panel["h"] > 200
            await page.screenshot(path=str(ARTIFACTS / f"track-{template}-phone.png"))
            await page.close()


async def test_first_load_is_small_over_the_wire(browser: Browser, site: Restartable) -> None:
    """The page's first load (tiles excluded) transfers under 250 KB with compression."""
    async with httpx.AsyncClient(timeout=wait(20)) as http:
        shop = await new_shop(http, site.server)
        order = await shipped_order(shop, "P5", "p5")
        page = await browser.new_page(viewport=PHONE)
        cdp = await page.context.new_cdp_session(page)
        await cdp.send("Network.enable")
        sizes: dict[str, float] = {}
        urls: dict[str, str] = {}
        cdp.on("Network.requestWillBeSent", lambda e: urls.__setitem__(e["requestId"], e["request"]["url"]))
        cdp.on("Network.loadingFinished", lambda e: sizes.__setitem__(e["requestId"], e["encodedDataLength"]))
        await page.route("**/*", lambda route: route.continue_() if "127.0.0.1" in route.request.url else route.abort())
        await page.goto(order["tracking_url"], wait_until="load")
        await page.wait_for_selector("#lm-conn[data-state=live]", timeout=wait(10) * 1000)
        ours = {urls[r]: n for r, n in sizes.items() if "127.0.0.1" in urls.get(r, "")}
        total = sum(ours.values())
        assert any(u.endswith("leaflet.js") for u in ours)  # the big one was counted
        assert total < 250_000, f"{total:.0f} bytes: {ours}"
        (ARTIFACTS / "first-load-bytes.txt").write_text(f"{total:.0f}\n")
        await page.close()


async def test_track_another_order_form(browser: Browser, site: Restartable) -> None:
    """The page's "Track another order" link opens the lookup form; filling it in opens that order's page."""
    async with httpx.AsyncClient(timeout=wait(20)) as http:
        shop = await new_shop(http, site.server)
        first = await shipped_order(shop, "P6", "p6")
        await shop.order("P7")
        page = await open_page(browser, first["tracking_url"], PHONE, locale="en-US")
        await page.click("text=Track another order")
        await page.fill("#number", "P7")
        await page.fill("#contact", "ana@example.com")
        await page.click("button[type=submit]")
        await page.wait_for_selector("#lm-number >> text=Order P7", timeout=wait(10) * 1000)
        await page.screenshot(path=str(ARTIFACTS / "lookup-result-phone.png"))
        await page.close()
